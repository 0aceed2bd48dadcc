"""Referrals (hänvisning, R1–R5): which one is in force, and what a caller hears.

A referral has a person (extension), a reason code, a start and an end (the
return time), an optional note, and who set it from where. A person has at
most one referral in force: the one that started last among those whose
period holds ``now`` and that were not cleared. A future one waits its turn
(R3) and each ends by itself at its end. Nothing is deleted: clearing sets
``cleared_at``, so the history is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from vvk_pbx.domain.announcements import clock
from vvk_pbx.domain.calendar import Calendar, UnsupportedYearError

MONTHS = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)


# Steps of announced_return: each lands on an opening of one calendar; a month of
# daily openings of two calendars that never overlap is far beyond any real config.
_MAX_STEPS = 64


class Source(StrEnum):
    """Where a referral was set from (R2)."""

    PHONE = "phone"
    API = "api"
    CLI = "cli"


@dataclass(frozen=True)
class Referral:
    """One referral. Times are aware; ``end`` is the return time."""

    id: str
    extension: str
    reason: int
    start: datetime
    end: datetime
    set_by: str
    source: Source
    note: str | None = None
    cleared_at: datetime | None = None
    cleared_by: str | None = None  # who ended it early (S1); None when a newer one replaced it

    def in_force(self, now: datetime) -> bool:
        return self.cleared_at is None and self.start <= now < self.end

    def cleared(self, at: datetime, by: str | None = None) -> Referral:
        """The referral ended early at ``at`` (R4), by ``by``; a future one is cancelled."""
        return replace(self, cleared_at=at, cleared_by=by)


def in_force(referrals: Iterable[Referral], extension: str, now: datetime) -> Referral | None:
    """The person's referral in force at ``now``, or None (R3: the latest started wins)."""
    found = [r for r in referrals if r.extension == extension and r.in_force(now)]
    return max(found, key=lambda r: (r.start, r.id)) if found else None


def announced_return(back: datetime, calendar: Calendar, unit: Calendar | None = None) -> datetime:
    """The return time a caller is told (R5): ``back`` if the switchboard (``calendar``)
    and the person's unit (its phone hours, A7; None = no hours of its own) are both
    open then, else the first instant after it when both are. The person cannot be
    reached before. Falls back to ``back`` when no such instant comes within the
    calendars' two-year horizon or ``back`` is beyond the holiday data's years.
    """
    calendars = [calendar] if unit is None else [calendar, unit]
    at = back
    try:
        # Each step moves to a closed calendar's next opening, so the loop ends
        # once both agree; the bound only guards against hours that never meet.
        for _ in range(_MAX_STEPS):
            closed = next((c for c in calendars if not c.is_open(at)), None)
            if closed is None:
                return at
            change = closed.next_change(at)
            if change is None:
                return back
            at = change
    except UnsupportedYearError:
        pass
    return back


def when_back(now: datetime, back: datetime) -> list[str]:
    """The prompt names of "i dag klockan 14 30", "i morgon klockan 8", "måndag klockan 9"
    (within a week) or "måndag den 7 december klockan 9", both instants local."""
    days = (back.date() - now.date()).days
    if days == 0:
        day = ["today"]
    elif days == 1:
        day = ["tomorrow"]
    elif 1 < days < 7:
        day = [f"day-{back.weekday()}"]
    else:
        day = [f"day-{back.weekday()}", "the-date", f"ord-{back.day}", f"month-{back.month}"]
    return [*day, *clock(back.hour, back.minute)]


def announcement(
    extension: str,
    referral: Referral | None,
    now: datetime,
    calendar: Calendar,
    unit: Calendar | None = None,
) -> list[str]:
    """What a caller to a referred person hears first, as prompt names (R5):
    "Anna Berg är på möte och är tillbaka i dag klockan 14 30", the return moved
    to the next time the switchboard and the unit (``unit``: its phone hours,
    A7) are open (``announced_return``). With no referral: only the name
    ("Anna Berg svarar inte")."""
    if referral is None:
        return [f"name-{extension}", "not-answering"]
    local_now = now.astimezone(calendar.tz)
    back = announced_return(referral.end, calendar, unit).astimezone(calendar.tz)
    return [
        f"name-{extension}",
        f"reason-{referral.reason}",
        "and-back",
        *when_back(local_now, back),
    ]
