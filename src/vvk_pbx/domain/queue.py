"""The operator queue's order (A4): external calls first, internal ones never forever.

An internal call queues as if it had arrived ``internal_delay_s`` later than
it did. So an external call goes before every internal call that arrived less
than that long before it, and an internal call that has waited longer than
that goes before newer external calls: its priority grows with its wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Waiting:
    """A call waiting for an operator: external (from the trunk) or internal."""

    call_id: str
    external: bool
    arrived_at: datetime


def queue_position_time(call: Waiting, internal_delay_s: float) -> datetime:
    """The instant the call queues as having arrived at (aware)."""
    return (
        call.arrived_at if call.external else call.arrived_at + timedelta(seconds=internal_delay_s)
    )


def in_order(waiting: Iterable[Waiting], internal_delay_s: float) -> list[Waiting]:
    """The waiting calls in the order operators should take them (A4)."""
    return sorted(
        waiting,
        key=lambda w: (
            queue_position_time(w, internal_delay_s),
            not w.external,
            w.arrived_at,
            w.call_id,
        ),
    )
