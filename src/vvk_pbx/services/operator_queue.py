"""The operator queue, the operators' side (A3, A4, A6): who is free, who waits, who is offered.

The callers' side is ``domain/callflow/flows/operator_queue.py``; the order is
``domain/queue.py``. Reservation is synchronous (``dispatch``), so two calls
never take one operator; the ringing happens on the offered call's own worker
(``offer`` posts ``Offered`` there). Times are the controller's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from vvk_pbx.domain.queue import OperatorLine, Waiting, in_order, offers
from vvk_pbx.services.calls.timers import Timers
from vvk_pbx.services.clock import Clock

log = logging.getLogger(__name__)

# A phone that ends a leg so is not offered calls for a while: it is on a call
# we do not control, declined, or offline (A6 keeps the caller in line meanwhile).
UNAVAILABLE = ("BUSY", "CHANUNAVAIL", "CONGESTION")
UNAVAILABLE_S = 30


@dataclass
class OperatorState:
    """One operator's line: the call it is reserved for, rings for or talks on, if any."""

    extension: str
    idle_since: datetime
    call: str | None = None
    leg: str | None = None  # the leg that rings or talks: None while only reserved
    unavailable_until: datetime | None = None

    def free(self, now: datetime) -> bool:
        return self.call is None and (
            self.unavailable_until is None or self.unavailable_until <= now
        )


class OperatorQueue:
    """Waiting callers and the operators' lines. ``offer(call_id, extensions)`` is told
    which operators are reserved for which call."""

    def __init__(
        self,
        extensions: Iterable[str],
        strategy: str,
        internal_delay_s: float,
        clock: Clock,
        timers: Timers,
        offer: Callable[[str, tuple[str, ...]], None],
    ) -> None:
        self.strategy = strategy
        self.internal_delay_s = internal_delay_s
        self.clock = clock
        self.timers = timers
        self.offer = offer
        started = clock.now()
        self.operators = {ext: OperatorState(ext, started) for ext in extensions}
        self.waiting: dict[str, Waiting] = {}

    def enqueue(self, call_id: str, external: bool, since: datetime) -> bool:
        """Put the call in line as arriving at ``since`` (A4) and offer what is free.
        Returns whether it still waits (no operator for it now)."""
        self.waiting[call_id] = Waiting(call_id, external, since)
        self.dispatch()
        return call_id in self.waiting

    def leave(self, call_id: str) -> None:
        """The call leaves the line; every operator reserved for, ringing for or talking
        on it is free again."""
        self.waiting.pop(call_id, None)
        now = self.clock.now()
        for op in self.operators.values():
            if op.call == call_id:
                op.call = op.leg = None
                op.idle_since = now

    def ringing(self, call_id: str, extension: str, leg_id: str) -> None:
        """The operator reserved for the call rings on ``leg_id``."""
        op = self.operators.get(extension)
        if op is not None and op.call == call_id:
            op.leg = leg_id

    def give_back(self, call_id: str, extensions: Iterable[str]) -> None:
        """Operators reserved for the call that it will not ring."""
        for extension in extensions:
            op = self.operators.get(extension)
            if op is not None and op.call == call_id and op.leg is None:
                op.call = None

    def leg_done(self, leg_id: str, status: str) -> None:
        """An operator's leg ended (``status`` as the call log has it): the operator is free,
        or left alone for ``UNAVAILABLE_S`` after a busy or unreachable phone."""
        for op in self.operators.values():
            if op.leg != leg_id:
                continue
            now = self.clock.now()
            op.call = op.leg = None
            op.idle_since = now
            if status in UNAVAILABLE:
                op.unavailable_until = now + timedelta(seconds=UNAVAILABLE_S)
                log.info(
                    "operator %s: %s; not offered calls for %d s",
                    op.extension,
                    status,
                    UNAVAILABLE_S,
                )
                self.timers.start(("queue", op.extension), UNAVAILABLE_S, self.dispatch)

    def dispatch(self) -> None:
        """Reserve free operators for the calls first in line and post the offers (A3, A4)."""
        if not self.waiting:
            return
        now = self.clock.now()
        lines = [
            OperatorLine(op.extension, op.free(now), op.idle_since)
            for op in self.operators.values()
        ]
        ordered = in_order(self.waiting.values(), self.internal_delay_s)
        for call_id, extensions in offers(self.strategy, ordered, lines):
            self.waiting.pop(call_id, None)
            for extension in extensions:
                op = self.operators[extension]
                op.call, op.leg = call_id, None
            self.offer(call_id, extensions)
