"""One call's record for the call log (A1, A2, O1): pure data and the rules that fill it.

Times are aware datetimes from the ARI events' own ``timestamp`` fields, never
the time an event reached the controller. A record is saved at every state
change, so a crash loses at most the change in flight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from vvk_pbx.domain.routing import Route, rings, within_goal

# The call log's caller and called columns hold this many characters: caller ids
# and dialled strings come from outside, with any length and any characters.
MAX_NUMBER = 64


def seconds_between(start: datetime, end: datetime) -> float:
    """Real seconds from ``start`` to ``end`` (aware). Python subtracts two datetimes of the
    same zone as wall times: across a DST change that is an hour off. Timestamps are not."""
    return end.timestamp() - start.timestamp()


def display_name(raw: str) -> str:
    """A caller's display name as sent: Asterisk's PJSIP keeps the quoted-pairs of the
    From header's quoted-string (``\\"`` for ``"``, RFC 3261 §25.1; checked on 22.10),
    so they are undone here, where the name enters."""
    return re.sub(r"\\(.)", r"\1", raw)


def bounded(value: str) -> str:
    """``value`` as the call log can keep it: printable characters only, at most
    ``MAX_NUMBER`` of them (the rest cut, marked with …)."""
    clean = "".join(c if c.isprintable() else "?" for c in value)
    return clean if len(clean) <= MAX_NUMBER else clean[: MAX_NUMBER - 1] + "…"


class Outcome(StrEnum):
    """How a call ended (or ``in_progress`` while it lasts)."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    CLOSED = "closed"
    ON_CALL_TRANSFER = "on_call_transfer"
    FALLBACK = "fallback"
    VOICEMAIL = "voicemail"
    REFERRED = "referred"  # the caller heard the referral and went nowhere (R5)
    COLLEAGUE = "colleague"  # a colleague in the unit answered instead (A5, R5)
    NO_ANSWER = "no_answer"
    UNKNOWN_NUMBER = "unknown_number"
    FEATURE_CODE = "feature_code"  # a staff dial code was carried out or refused (R2)


@dataclass(frozen=True)
class Leg:
    """An outgoing leg of a call: an operator's, an extension's or an on-call number's channel."""

    id: str
    call_id: str
    endpoint: str
    purpose: str
    created_at: datetime
    ring_started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    status: str = ""


@dataclass(frozen=True)
class CallRecord:
    """One call: the caller's channel id is its id."""

    id: str
    direction: str  # "external" or "internal"
    caller: str
    called: str
    arrived_at: datetime
    caller_name: str = ""  # the display name the caller sent (From), bounded
    ring_started_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    ended_at: datetime | None = None
    outcome: Outcome = Outcome.IN_PROGRESS
    rings: int | None = None
    within_goal: bool | None = None
    trace: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def arrive(
        cls,
        call_id: str,
        caller: str,
        called: str,
        at: datetime,
        route: Route,
        caller_name: str = "",
    ) -> CallRecord:
        """A new call's record; ``caller``, ``called`` and ``caller_name`` as ``bounded``
        leaves them."""
        return cls(
            id=call_id,
            direction="external" if route.external else "internal",
            caller=caller,
            called=called,
            arrived_at=at,
            caller_name=caller_name,
            trace=tuple(str(step) for step in route.trace),
        )

    def note(self, decision: str) -> CallRecord:
        """The record with one more trace line."""
        return replace(self, trace=(*self.trace, decision))

    def answered(self, at: datetime, by: str, cycle_ms: int, goal_rings: int) -> CallRecord:
        """A person answered at ``at`` (A2: never a machine). Rings count from arrival (A1)."""
        seconds = max(0.0, seconds_between(self.arrived_at, at))
        return replace(
            self,
            answered_at=at,
            answered_by=by,
            outcome=Outcome.ANSWERED,
            rings=rings(seconds, cycle_ms),
            within_goal=within_goal(seconds, cycle_ms, goal_rings),
        )

    def ended(self, at: datetime, outcome: Outcome | None = None) -> CallRecord:
        """The call ended at ``at``; unanswered and still in progress means the caller gave up."""
        final = outcome or (
            Outcome.ABANDONED if self.outcome is Outcome.IN_PROGRESS else self.outcome
        )
        return replace(self, ended_at=self.ended_at or at, outcome=final)
