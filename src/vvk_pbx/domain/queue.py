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
from enum import StrEnum


class Presence(StrEnum):
    """An operator's own state on the console (A3, A6): only a logged-in operator is
    offered calls; a paused one takes only the calls they pick or parked."""

    IN = "in"  # inloggad
    PAUSED = "paused"  # paus
    OUT = "out"  # utloggad


@dataclass(frozen=True)
class Waiting:
    """A call waiting for an operator: external (from the trunk) or internal. ``prefer``:
    the operator it goes to when they are free (a parked call's recall, an operator's
    pick); while they are not, it waits as any call does."""

    call_id: str
    external: bool
    arrived_at: datetime
    prefer: str | None = None


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
    """An operator as the queue sees one: ``free`` to be offered any call (logged in, on
    no call), ``reachable`` for a call that prefers them (on no call, not logged out:
    a paused operator's own recall or pick), and idle since when (aware)."""

    extension: str
    free: bool
    idle_since: datetime
    reachable: bool = True


def offers(
    strategy: str, waiting: Sequence[Waiting], operators: Sequence[OperatorLine]
) -> list[tuple[str, tuple[str, ...]]]:
    """Which waiting call rings which free operators now: ``[(call id, extensions)]`` (A3, A6).

    ``waiting`` is already in queue order (``in_order``); ``operators`` in
    config order. A call that prefers a free operator goes to them first, in
    queue order. Then ``ring-all`` offers the first caller every free
    operator; ``longest-idle`` pairs callers in order with free operators,
    longest idle first (config order breaks ties). Raises ``ValueError`` for
    another strategy.
    """
    if strategy not in ("ring-all", "longest-idle"):
        raise ValueError(f"unknown ring strategy {strategy!r}")
    preferred: list[tuple[str, tuple[str, ...]]] = []
    taken: set[str] = set()
    for w in waiting:
        chosen = next(
            (
                o
                for o in operators
                if o.extension == w.prefer and o.reachable and o.extension not in taken
            ),
            None,
        )
        if chosen is not None:
            preferred.append((w.call_id, (chosen.extension,)))
            taken.add(chosen.extension)
    if preferred:
        calls = {call_id for call_id, _ in preferred}
        waiting = [w for w in waiting if w.call_id not in calls]
        operators = [o for o in operators if o.extension not in taken]
        return preferred + offers(strategy, waiting, operators)
    free = [o for o in operators if o.free]
    if not waiting or not free:
        return []
    if strategy == "ring-all":
        return [(waiting[0].call_id, tuple(o.extension for o in free))]
    by_idle = sorted(enumerate(free), key=lambda io: (io[1].idle_since, io[0]))
    return [(w.call_id, (o.extension,)) for w, (_, o) in zip(waiting, by_idle, strict=False)]
