"""The live feed the console and the wallboard share (issue 11, R6, A3–A5).

The board has sections, each a JSON value the pages show whole:

- ``calls``: the calls in progress, in the queue's order first (A4): id,
  caller, dialled number, external or internal, state, arrival (Asterisk's
  time, ISO 8601 local), the queue position while waiting, who talks.
- ``operators``: each operator's line: free, reserved, ringing, talking or
  unavailable, and the call it is on.
- ``referrals``: every referral in force, as ``GET /referrals`` shows them.
- ``lines``: each phone's line state by extension: idle, ringing, busy,
  unavailable or unknown (``services/lines.py``, Asterisk's device state).
- ``hours``: the switchboard open or closed now, and the next change (H1–H5).

A client first gets ``snapshot`` (every section and ``seq``), then one
``change`` (``{"seq", "section", "data"}``) each time a section differs from
what was last sent. A client that falls behind by ``BACKLOG`` changes is cut
off: it reconnects and gets a new snapshot, so no page shows a stale queue.
``refresh()`` (every ``REFRESH_S`` s) catches what no event announces: a
referral that ended by itself, one set from another process, the hours.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vvk_pbx.domain.callflow.states import Connected, Queued, Ringing
from vvk_pbx.domain.queue import in_order
from vvk_pbx.services import views
from vvk_pbx.services.calls.controller import CallController
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.lines import LineStates
from vvk_pbx.services.referrals import ReferralService

log = logging.getLogger(__name__)

BACKLOG = 256  # changes a client may be behind before it is cut off
REFRESH_S = 5.0
# The states a page shows by a name of its own; the others by their class's name.
STATE_NAMES: dict[type, str] = {Queued: "waiting", Ringing: "ringing", Connected: "connected"}

Message = dict[str, Any]


class Subscription:
    """One connected page: its changes in order, or ``None`` when it was cut off."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(BACKLOG + 1)

    async def next(self) -> Message | None:
        return await self.queue.get()


class LiveFeed:
    """The board and its subscribers. ``changed()`` after anything that may have moved a
    call, an operator or a referral; it never raises into its caller."""

    def __init__(
        self,
        controller: CallController,
        referrals: ReferralService,
        clock: Clock,
        lines: LineStates | None = None,
    ) -> None:
        self.controller = controller
        self.lines = lines
        self.referrals = referrals
        self.clock = clock
        self.seq = 0
        self.board: dict[str, Any] = {}
        self.subscribers: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- the sections ---------------------------------------------------------------

    def _calls(self) -> list[dict[str, Any]]:
        queue = self.controller.queue
        waiting = in_order(queue.waiting.values(), queue.internal_delay_s)
        position = {w.call_id: n for n, w in enumerate(waiting, start=1)}
        tz = self.referrals.calendar.tz
        shown = []
        for line in self.controller.registry.lines.values():
            call, state = line.call, line.call.state
            shown.append(
                {
                    "id": call.id,
                    "caller": call.record.caller,
                    "called": call.record.called,
                    "external": call.record.direction == "external",
                    "kind": call.kind.value,
                    "state": STATE_NAMES.get(type(state), type(state).__name__.lower()),
                    "arrived_at": views.local(call.record.arrived_at, tz),
                    "position": position.get(call.id),
                    "with": state.who if isinstance(state, Connected) else None,
                    "ringing": sorted(line.legs[leg].who for leg in line.live_legs())
                    if isinstance(state, Ringing)
                    else [],
                }
            )
        last = len(position) + 1  # calls not in line come after those that are
        return sorted(shown, key=lambda c: (c["position"] or last, c["arrived_at"]))

    def _operators(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        shown = []
        for op in self.controller.queue.operators.values():
            if op.call is None:
                state = "free" if op.free(now) else "unavailable"
            elif op.leg is None:
                state = "reserved"
            else:
                line = self.controller.registry.line(op.call)
                talking = line is not None and line.call.state == Connected(op.leg, op.extension)
                state = "talking" if talking else "ringing"
            shown.append({"extension": op.extension, "state": state, "call": op.call})
        return shown

    async def _referrals(self) -> list[dict[str, Any]]:
        found = await self.referrals.in_force_now(self.clock.now())
        return [views.referral_json(self.referrals, found[ext]) for ext in sorted(found)]

    def _hours(self) -> dict[str, Any]:
        return views.status_json(self.referrals.calendar.status(self.clock.now()))

    # ----- changes --------------------------------------------------------------------

    def changed(self) -> None:
        """The calls and operators may have moved: send the sections that did."""
        try:
            self._put("calls", self._calls())
            self._put("operators", self._operators())
            self._put("lines", self.lines.as_json() if self.lines is not None else {})
        except Exception:  # the feed must never break a call
            log.exception("live feed: the board could not be built")

    async def refresh(self) -> None:
        """Every section anew: referrals (one read of the store) and hours too. A store
        that does not answer keeps the last referrals shown, and is logged."""
        self.changed()
        self._put("hours", self._hours())
        try:
            self._put("referrals", await self._referrals())
        except Exception as exc:
            log.warning("live feed: referrals not refreshed: %s", exc)

    def referrals_changed(self) -> None:
        """A referral was set or cleared here: send the referrals anew, soon."""
        task = asyncio.get_running_loop().create_task(self.refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Refresh every ``REFRESH_S`` s until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    def _put(self, section: str, data: Any) -> None:
        if self.board.get(section) == data:
            return
        self.board[section] = data
        self.seq += 1
        message = {"seq": self.seq, "section": section, "data": data}
        for sub in list(self.subscribers):
            if sub.queue.qsize() >= sub.queue.maxsize - 1:  # one place kept for the cut
                self.subscribers.discard(sub)
                sub.queue.put_nowait(None)  # cut off: it reconnects to a snapshot
            else:
                sub.queue.put_nowait(message)

    # ----- subscribers ----------------------------------------------------------------

    async def subscribe(self) -> tuple[Message, Subscription]:
        """The snapshot now and the subscription to every change after it."""
        if "referrals" not in self.board:
            await self.refresh()
        sub = Subscription()
        self.subscribers.add(sub)
        snapshot = {"seq": self.seq, **self.board, "policy": self._policy()}
        return snapshot, sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def close(self) -> None:
        """End every subscription (the controller stops)."""
        for sub in list(self.subscribers):
            self.subscribers.discard(sub)
            sub.queue.put_nowait(None)

    def _policy(self) -> dict[str, Any]:
        """What a page needs to count rings from a call's arrival (A1)."""
        policy = self.controller.policy
        return {"cycle_ms": policy.cycle_ms, "goal_rings": policy.goal_rings}
