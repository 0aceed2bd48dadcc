"""Follow-up of how the phones were answered (A1, F1): the numbers the wallboard shows for
today, and the monthly report will for a month.

A call counts towards the four-ring goal when its rings were counted (the
switchboard, a person's own phone: ``CallRecord.within_goal`` is set) or
when the caller hung up waiting (abandoned): a caller who gave up was not
answered within four rings either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vvk_pbx.domain.calls import CallRecord, Outcome


@dataclass(frozen=True)
class Summary:
    """``calls`` in all; ``counted`` those the goal applies to, ``within_goal`` of them
    answered within the goal; ``abandoned``: callers who hung up waiting."""

    calls: int
    answered: int
    counted: int
    within_goal: int
    abandoned: int

    @property
    def share(self) -> float | None:
        """The share answered within the goal (0..1), None with nothing counted."""
        return self.within_goal / self.counted if self.counted else None


def summarise(records: Iterable[CallRecord]) -> Summary:
    """The summary of these calls (ended or not: a call in progress counts once answered)."""
    calls = answered = counted = within = abandoned = 0
    for record in records:
        calls += 1
        if record.answered_at is not None:
            answered += 1
        if record.within_goal is not None:
            counted += 1
            within += record.within_goal
        elif record.outcome is Outcome.ABANDONED:
            counted += 1
            abandoned += 1
    return Summary(calls, answered, counted, within, abandoned)
