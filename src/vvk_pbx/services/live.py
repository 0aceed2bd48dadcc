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
- ``messages``: the callback ledger's messages not yet called back (V2).
- ``today``: today's calls, answered, within the four-ring goal and
  abandoned (``domain/followup.py``), read from the call log every
  ``TODAY_S`` s.
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
from datetime import datetime
from typing import Any, Protocol

from vvk_pbx.domain.callflow.states import Connected, Consulting, Parked, Queued, Ringing
from vvk_pbx.domain.calls import CallRecord
from vvk_pbx.domain.followup import summarise
from vvk_pbx.domain.queue import in_order
from vvk_pbx.domain.voicemail import Status
from vvk_pbx.services import views
from vvk_pbx.services.calls.controller import CallController
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.lines import LineStates
from vvk_pbx.services.referrals import ReferralService

log = logging.getLogger(__name__)

BACKLOG = 256  # changes a client may be behind before it is cut off
REFRESH_S = 5.0
TODAY_S = 30.0  # today's numbers read the call log: not at every call
# The states a page shows by a name of its own; the others by their class's name.
STATE_NAMES: dict[type, str] = {
    Queued: "waiting",
    Ringing: "ringing",
    Connected: "connected",
    Parked: "parked",
    Consulting: "consulting",
}

Message = dict[str, Any]


class CallLogReader(Protocol):
    """What the feed reads of the call log (``storage.calllog.CallLog``)."""

    async def list_calls(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[CallRecord]: ...


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
        call_log: CallLogReader | None = None,
    ) -> None:
        self.controller = controller
        self.lines = lines
        self.call_log = call_log
        self._today_read: float | None = None  # the loop's time of the last read
        # Built once: the operators' section is made after every event.
        self.names = dict(referrals.settings.extensions())
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
                    "name": call.record.caller_name,
                    "called": call.record.called,
                    "external": call.record.direction == "external",
                    "kind": call.kind.value,
                    "state": STATE_NAMES.get(type(state), type(state).__name__.lower()),
                    "arrived_at": views.local(call.record.arrived_at, tz),
                    "position": position.get(call.id),
                    "with": state.who if isinstance(state, Connected | Consulting) else None,
                    "parked_by": state.by if isinstance(state, Parked) else None,
                    "consult_to": state.to if isinstance(state, Consulting) else None,
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
                unavailable = op.unavailable_until is not None and op.unavailable_until > now
                state = "unavailable" if unavailable else "free"
            elif op.leg is None:
                state = "reserved"
            else:
                line = self.controller.registry.line(op.call)
                call_state = line.call.state if line is not None else None
                talking = isinstance(call_state, Connected | Consulting) and (
                    call_state.leg == op.leg
                )
                state = "talking" if talking else "ringing"
            shown.append(
                {
                    "extension": op.extension,
                    "name": self.names.get(op.extension, ""),
                    "state": state,
                    "presence": op.presence.value,
                    "call": op.call,
                }
            )
        return shown

    async def _referrals(self) -> list[dict[str, Any]]:
        found = await self.referrals.in_force_now(self.clock.now())
        return [views.referral_json(self.referrals, found[ext]) for ext in sorted(found)]

    async def _messages(self) -> list[dict[str, Any]]:
        now, tz = self.clock.now(), self.referrals.calendar.tz
        found = await self.referrals.ledger(now)
        return [views.message_json(m, now, tz) for m in found if m.status is not Status.CALLED_BACK]

    async def _today(self) -> dict[str, Any] | None:
        """Today's numbers, at most every ``TODAY_S`` s; None when not read now."""
        loop_now = asyncio.get_running_loop().time()
        if self.call_log is None or (
            self._today_read is not None and loop_now - self._today_read < TODAY_S
        ):
            return None
        self._today_read = loop_now
        tz = self.referrals.calendar.tz
        start = self.clock.real().astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        summary = summarise(await self.call_log.list_calls(since=start))
        return {
            "calls": summary.calls,
            "answered": summary.answered,
            "within_goal": summary.within_goal,
            "counted": summary.counted,
            "share": summary.share,
            "abandoned": summary.abandoned,
            "goal_rings": self.controller.policy.goal_rings,
        }

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
            self._put("messages", await self._messages())
            today = await self._today()
            if today is not None:
                self._put("today", today)
        except Exception as exc:
            log.warning("live feed: referrals, messages or today not refreshed: %s", exc)

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
        snapshot = {
            "seq": self.seq,
            **self.board,
            "policy": self._policy(),
            # Asterisk's timeline, which arrivals are on: a page counts waits from it.
            "now": views.local(self.clock.real(), self.referrals.calendar.tz),
        }
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
