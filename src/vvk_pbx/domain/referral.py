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
from vvk_pbx.domain.calendar import Calendar

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

    def in_force(self, now: datetime) -> bool:
        return self.cleared_at is None and self.start <= now < self.end

    def cleared(self, at: datetime) -> Referral:
        """The referral ended early at ``at`` (R4); a future one is cancelled."""
        return replace(self, cleared_at=at)


def in_force(referrals: Iterable[Referral], extension: str, now: datetime) -> Referral | None:
    """The person's referral in force at ``now``, or None (R3: the latest started wins)."""
    found = [r for r in referrals if r.extension == extension and r.in_force(now)]
    return max(found, key=lambda r: (r.start, r.id)) if found else None


def announced_return(back: datetime, calendar: Calendar) -> datetime:
    """The return time a caller is told: ``back``, or the next opening if the
    switchboard is closed then (the person cannot be reached before)."""
    if calendar.is_open(back):
        return back
    change = calendar.status(back).next_change
    return change if change is not None else back


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
    extension: str, referral: Referral | None, now: datetime, calendar: Calendar
) -> list[str]:
    """What a caller to a referred person hears first, as prompt names (R5):
    "Anna Berg är på möte och är tillbaka i dag klockan 14 30". With no
    referral: only the name ("Anna Berg svarar inte")."""
    if referral is None:
        return [f"name-{extension}", "not-answering"]
    local_now = now.astimezone(calendar.tz)
    back = announced_return(referral.end, calendar).astimezone(calendar.tz)
    return [
        f"name-{extension}",
        f"reason-{referral.reason}",
        "and-back",
        *when_back(local_now, back),
    ]
