"""The operator queue's order (A4): external calls first, internal ones never forever.

An internal call queues as if it had arrived ``internal_delay_s`` later than
it did. So an external call goes before every internal call that arrived less
than that long before it, and an internal call that has waited longer than
that goes before newer external calls: its priority grows with its wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True)
class OperatorLine:
    """An operator as the queue sees one: free or not, and idle since when (aware)."""

    extension: str
    free: bool
    idle_since: datetime


def offers(
    strategy: str, waiting: Sequence[Waiting], operators: Sequence[OperatorLine]
) -> list[tuple[str, tuple[str, ...]]]:
    """Which waiting call rings which free operators now: ``[(call id, extensions)]`` (A3, A6).

    ``waiting`` is already in queue order (``in_order``); ``operators`` in
    config order. ``ring-all`` offers the first caller every free operator;
    ``longest-idle`` pairs callers in order with free operators, longest idle
    first (config order breaks ties). Raises ``ValueError`` for another strategy.
    """
    free = [o for o in operators if o.free]
    if not waiting or not free:
        return []
    if strategy == "ring-all":
        return [(waiting[0].call_id, tuple(o.extension for o in free))]
    if strategy == "longest-idle":
        by_idle = sorted(enumerate(free), key=lambda io: (io[1].idle_since, io[0]))
        return [(w.call_id, (o.extension,)) for w, (_, o) in zip(waiting, by_idle, strict=False)]
    raise ValueError(f"unknown ring strategy {strategy!r}")
