"""The opening hours for the website (H5): iCalendar, JSON and the HTML fragment, from the
calendar the phones obey."""

from __future__ import annotations

from datetime import date, datetime, time

from icalendar import Calendar as ICalendar

from tests.conftest import SAMPLE_CONFIG, STHLM
from vvk_pbx.config import load
from vvk_pbx.config.model import DateOverride, Overrides
from vvk_pbx.domain.calendar import Calendar, TimeRange
from vvk_pbx.services import hours_web

SETTINGS = load(SAMPLE_CONFIG)


def _events(feed: bytes) -> dict[str, list[tuple[object, object, str]]]:
    """The feed's events by local date: (start, end, summary)."""
    found: dict[str, list[tuple[object, object, str]]] = {}
    for event in ICalendar.from_ical(feed).walk("VEVENT"):
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        day = (start.astimezone(STHLM).date() if isinstance(start, datetime) else start).isoformat()
        found.setdefault(day, []).append((start, end, str(event["summary"])))
    return found


def test_the_feed_for_december_lists_christmas_eve_short_and_christmas_day_closed() -> None:
    feed = hours_web.ics(Calendar(SETTINGS.hours_policy()), date(2026, 12, 1), 31)
    events = _events(feed)
    [(start, end, summary)] = events["2026-12-24"]
    assert (start, end) == (
        datetime(2026, 12, 24, 8, 0, tzinfo=STHLM),
        datetime(2026, 12, 24, 12, 0, tzinfo=STHLM),
    )
    assert summary == "Växeln öppen (Julafton)"
    assert events["2026-12-25"] == [
        (date(2026, 12, 25), date(2026, 12, 26), "Växeln stängd: Juldagen")
    ]
    assert "2026-12-27" not in events, "a Sunday is no news: no event"
    assert len(events["2026-12-01"]) == 2, "a normal Tuesday: before and after lunch"
    assert b"BEGIN:VTIMEZONE" in feed and b"TZID:Europe/Stockholm" in feed


def test_the_json_week_and_the_fragment_agree_with_the_calendar() -> None:
    calendar = Calendar(SETTINGS.hours_policy())
    at = datetime(2026, 12, 24, 12, 30, tzinfo=STHLM)
    week = hours_web.week_json(calendar, at)
    status = calendar.status(at)
    assert (week["open"], week["reason"]) == (status.is_open, status.reason)
    assert week["next_change"] == "2026-12-28T08:00:00+01:00"
    assert [d["date"] for d in week["week"]][:2] == ["2026-12-24", "2026-12-25"]
    assert week["week"][0]["hours"] == [["08:00", "12:00"]] and week["week"][0]["special"]
    assert week["week"][1]["hours"] == []
    text = hours_web.fragment(calendar, at)
    assert "Växeln är stängd nu." in text and "Öppnar måndag 28/12 kl. 08:00." in text


def test_the_fragment_escapes_what_ops_wrote() -> None:
    day = DateOverride(
        date=date(2026, 12, 2), hours=(TimeRange(time(9), time(11)),), reason="<b>Kick-off</b>"
    )
    settings = SETTINGS.model_copy(update={"overrides": Overrides(day=(day,))})
    text = hours_web.fragment(
        Calendar(settings.hours_policy()), datetime(2026, 12, 2, 10, 0, tzinfo=STHLM)
    )
    assert "<b>" not in text and "&lt;b&gt;Kick-off&lt;/b&gt;" in text
