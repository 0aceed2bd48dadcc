"""The opening hours for the website (H5): the calendar the phones obey, as iCalendar, JSON
and an HTML fragment, so the website can never disagree with the phone.

- ``ics(calendar, start)``: the next 365 days. Every open range is an event
  ("Växeln öppen", with the day's reason on a half day or a special date).
  A day that would be open in a normal week but is closed (a red day, an ops
  closed date) is an all-day event ("Växeln stängd: Juldagen"). Times are
  local, with a VTIMEZONE.
- ``week_json(calendar, at)``: open or closed at ``at``, the next change, and
  the seven days from ``at``'s date.
- ``fragment(calendar, at)``: the same as a small HTML ``<div>`` to embed,
  every text escaped.
"""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from typing import Any

from icalendar import Calendar as ICalendar
from icalendar import Event

from vvk_pbx.domain.calendar import Calendar, DayKind, DaySchedule, format_ranges

FEED_DAYS = 365
WEEKDAYS_SV = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
UID_DOMAIN = "hours.vvk-pbx.invalid"


def ics(calendar: Calendar, start: date, days: int = FEED_DAYS) -> bytes:
    """An iCalendar feed of the ``days`` from ``start``: openings and closed days."""
    feed = ICalendar()
    feed.add("prodid", "-//vvk-pbx//Växelns öppettider//SV")
    feed.add("version", "2.0")
    feed.add("x-wr-calname", "Växelns öppettider")
    stamp = datetime.combine(start, datetime.min.time(), calendar.tz)
    for offset in range(days):
        day = start + timedelta(days=offset)
        schedule = calendar.schedule(day)
        for n, hours in enumerate(schedule.ranges):
            event = Event()
            event.add("uid", f"{day.isoformat()}-{n}@{UID_DOMAIN}")
            event.add("dtstamp", stamp)
            event.add("dtstart", calendar.local_instant(day, hours.start))
            event.add("dtend", calendar.local_instant(day, hours.end))
            event.add("summary", _open_summary(schedule))
            event.add("transp", "TRANSPARENT")
            feed.add_component(event)
        if not schedule.ranges and calendar.normal_ranges(day):
            event = Event()
            event.add("uid", f"{day.isoformat()}-closed@{UID_DOMAIN}")
            event.add("dtstamp", stamp)
            event.add("dtstart", day)
            event.add("dtend", day + timedelta(days=1))
            event.add("summary", f"Växeln stängd: {schedule.reason}")
            event.add("transp", "TRANSPARENT")
            feed.add_component(event)
    feed.add_missing_timezones()
    body: bytes = feed.to_ical()
    return body


def _open_summary(schedule: DaySchedule) -> str:
    if schedule.kind is DayKind.NORMAL:
        return "Växeln öppen"
    return f"Växeln öppen ({schedule.reason})"


def week_json(calendar: Calendar, at: datetime) -> dict[str, Any]:
    """``{"open", "reason", "next_change", "at", "week": [{"date", "weekday", "hours",
    "reason", "special"}]}``: times ISO 8601 local, hours as ``[["08:00", "12:00"]]``."""
    status = calendar.status(at)
    return {
        "at": at.astimezone(calendar.tz).isoformat(),
        "open": status.is_open,
        "reason": status.reason,
        "next_change": None if status.next_change is None else status.next_change.isoformat(),
        "week": [_day_json(day) for day in calendar_week(calendar, at)],
    }


def _day_json(schedule: DaySchedule) -> dict[str, Any]:
    return {
        "date": schedule.day.isoformat(),
        "weekday": WEEKDAYS_SV[schedule.day.weekday()],
        "hours": [[f"{r.start:%H:%M}", f"{r.end:%H:%M}"] for r in schedule.ranges],
        "reason": schedule.reason,
        "special": schedule.kind is not DayKind.NORMAL,
    }


def fragment(calendar: Calendar, at: datetime) -> str:
    """A ``<div class="vvk-hours">`` for the website: now, the next change, the week."""
    status = calendar.status(at)
    state = "öppen" if status.is_open else "stängd"
    lines = [
        '<div class="vvk-hours" lang="sv">',
        f"<p><strong>Växeln är {state} nu.</strong> {html.escape(status.reason)}</p>",
    ]
    if status.next_change is not None:
        change = status.next_change.astimezone(calendar.tz)
        verb = "Stänger" if status.is_open else "Öppnar"
        when = f"{WEEKDAYS_SV[change.weekday()]} {change:%-d/%-m} kl. {change:%H:%M}"
        lines.append(f"<p>{verb} {html.escape(when)}.</p>")
    lines.append("<table><tbody>")
    for day in calendar_week(calendar, at):
        hours = format_ranges(day.ranges)
        name = f"{WEEKDAYS_SV[day.day.weekday()]} {day.day:%-d/%-m}"
        note = f" ({day.reason})" if day.kind is not DayKind.NORMAL else ""
        lines.append(f"<tr><th>{html.escape(name)}</th><td>{html.escape(hours + note)}</td></tr>")
    lines += ["</tbody></table>", "</div>", ""]
    return "\n".join(lines)


def calendar_week(calendar: Calendar, at: datetime) -> list[DaySchedule]:
    """The seven days from ``at``'s local date."""
    today = at.astimezone(calendar.tz).date()
    return [calendar.schedule(today + timedelta(days=n)) for n in range(7)]
