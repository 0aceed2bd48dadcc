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

from vvk_pbx.domain.queue import OperatorLine, Presence, Waiting, in_order, offers
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
    presence: Presence = Presence.IN

    def free(self, now: datetime) -> bool:
        """Offered any call: logged in, on no call, and the phone not lately unavailable."""
        return (
            self.presence is Presence.IN
            and self.call is None
            and (self.unavailable_until is None or self.unavailable_until <= now)
        )

    @property
    def reachable(self) -> bool:
        """Offered a call that prefers them (their pick, their recall): on no call, not out."""
        return self.call is None and self.presence is not Presence.OUT


class QueueError(Exception):
    """An operator's request the queue cannot do: ``reason`` for the operator, ``status``
    the HTTP one (404 no such call waiting, 409 not now, 422 not an operator)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class OperatorQueue:
    """Waiting callers and the operators' lines. ``offer(call_id, extensions, picked)`` is
    told which operators are reserved for which call; ``picked``: the operator chose it
    on the console (their phone may answer by itself)."""

    def __init__(
        self,
        extensions: Iterable[str],
        strategy: str,
        internal_delay_s: float,
        clock: Clock,
        timers: Timers,
        offer: Callable[[str, tuple[str, ...], bool], None],
    ) -> None:
        self.strategy = strategy
        self.internal_delay_s = internal_delay_s
        self.clock = clock
        self.timers = timers
        self.offer = offer
        started = clock.now()
        self.operators = {ext: OperatorState(ext, started) for ext in extensions}
        self.waiting: dict[str, Waiting] = {}

    def enqueue(
        self, call_id: str, external: bool, since: datetime, prefer: str | None = None
    ) -> bool:
        """Put the call in line as arriving at ``since`` (A4), for ``prefer`` first if
        given, and offer what is free. Returns whether it still waits."""
        self.waiting[call_id] = Waiting(call_id, external, since, prefer)
        self.dispatch()
        return call_id in self.waiting

    # ----- the operators' console --------------------------------------------------------

    def operator(self, extension: str) -> OperatorState:
        """The operator of ``extension``; raises ``QueueError`` 422 for another extension."""
        op = self.operators.get(extension)
        if op is None:
            raise QueueError(f"{extension} is not an operator's extension", 422)
        return op

    def set_presence(self, extension: str, presence: Presence) -> OperatorState:
        """Log the operator in, pause or log out (A3, A6); a logged-in one is offered at once.
        A call they ring for or talk on goes on. Raises ``QueueError`` 422."""
        op = self.operator(extension)
        if op.presence is not presence:
            log.info("operator %s: %s -> %s", extension, op.presence.value, presence.value)
            op.presence = presence
            if presence is Presence.IN:
                op.unavailable_until = None  # the operator says the phone is there
        self.dispatch()
        return op

    def first_waiting(self) -> str | None:
        """The call first in line (A4), or None."""
        ordered = in_order(self.waiting.values(), self.internal_delay_s)
        return ordered[0].call_id if ordered else None

    def pick(self, call_id: str, extension: str) -> None:
        """The operator takes this waiting call (*svara* on a chosen caller): reserved for
        them and offered, out of its turn. Raises ``QueueError``: 422 not an operator,
        409 the operator is on a call or logged out, 404 the call is not waiting."""
        op = self.operator(extension)
        self.check_reachable(op)
        if call_id not in self.waiting:
            raise QueueError(f"call {call_id} is not waiting in the queue", 404)
        del self.waiting[call_id]
        op.call, op.leg, op.unavailable_until = call_id, None, None
        self.offer(call_id, (extension,), True)

    @staticmethod
    def check_reachable(op: OperatorState) -> None:
        """Raise ``QueueError`` 409 unless the operator can take a call now."""
        if op.presence is Presence.OUT:
            raise QueueError(f"operator {op.extension} is logged out: log in first", 409)
        if op.call is not None:
            raise QueueError(f"operator {op.extension} is on a call already", 409)

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
            OperatorLine(op.extension, op.free(now), op.idle_since, op.reachable)
            for op in self.operators.values()
        ]
        ordered = in_order(self.waiting.values(), self.internal_delay_s)
        for call_id, extensions in offers(self.strategy, ordered, lines):
            self.waiting.pop(call_id, None)
            for extension in extensions:
                op = self.operators[extension]
                op.call, op.leg = call_id, None
            self.offer(call_id, extensions, False)
