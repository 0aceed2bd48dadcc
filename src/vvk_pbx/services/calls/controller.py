"""The controller: the ordered dispatcher's handler. Translate an ARI event, decide, act.

For each event: which call it is about (``key``: a leg's events are ordered
with its call's), what it means for the call (a ``CallEvent``), the flow's
decision (``domain.callflow.decide``, pure), the executor's acts, and the
call's record saved once if it changed. Every decision is logged as
``call=<id> <state> -> <event> -> <state>``. An unexpected error sends the
caller to the dialplan fallback, never into silence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from vvk_pbx.ari.client import AriNotFoundError
from vvk_pbx.ari.models import (
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelTransfer,
    Dial,
    Event,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)
from vvk_pbx.domain.callflow.call import Context, Policy
from vvk_pbx.domain.callflow.commands import Command
from vvk_pbx.domain.callflow.decide import adopt, arrive, decide
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallerGone,
    CallEvent,
    ConsultCancelled,
    ConsultCompleted,
    ConsultRequested,
    Digit,
    LegGone,
    Offered,
    ParkRequested,
    PromptDone,
    PromptFailed,
    RecordingDone,
    TransferRequested,
    Unpark,
    describe,
)
from vvk_pbx.domain.callflow.flows import console
from vvk_pbx.domain.callflow.flows.common import fall_back
from vvk_pbx.domain.callflow.flows.transfer import TransferError, check
from vvk_pbx.domain.callflow.states import Parked, Ringing, label
from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.queue import Presence
from vvk_pbx.domain.routing import CallKind
from vvk_pbx.services.calls.executor import Executor
from vvk_pbx.services.calls.registry import Line, LiveLeg, Registry
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.operator_queue import OperatorQueue
from vvk_pbx.services.recorder import Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posted:
    """An event the controller posts to a call's own worker, behind the call's ARI events:
    an offer, a timer, the API's transfer, what resync found."""

    call_id: str
    event: CallEvent


Item = Event | Posted


class CallController:
    """Handles every event of the Stasis app; ``key`` tells the dispatcher which call.

    ``submit`` queues an item behind the call's own events (the dispatcher's
    ``submit``, set when it is made); ``post`` is the way the queue, the timers,
    the API and resync reach a call.
    """

    def __init__(
        self,
        registry: Registry,
        executor: Executor,
        queue: OperatorQueue,
        recorder: Recorder,
        policy: Policy,
        clock: Clock,
    ) -> None:
        self.registry = registry
        self.executor = executor
        self.queue = queue
        self.recorder = recorder
        self.policy = policy
        self.clock = clock
        self.submit: Callable[[Item], None] = _not_wired
        # Told after every item handled: calls and operators may have moved (the live
        # feed, issue 11). It must not raise.
        self.on_change: Callable[[], None] = lambda: None
        # Told once per call, with its record, when the record ends (the metrics).
        self.on_ended: Callable[[CallRecord], None] = lambda record: None
        # Told of an event of no call in progress (the fallback's callers, followed by
        # reconciliation to their end). It must not raise.
        self.on_unfollowed: Callable[[Event], None] = lambda item: None

    def post(self, call_id: str, event: CallEvent) -> None:
        self.submit(Posted(call_id, event))

    def key(self, item: Item) -> str:
        if isinstance(item, Posted):
            return item.call_id
        return self.registry.key(item.channel_id or "")

    # ----- the API's way in ---------------------------------------------------------------

    def request_transfer(self, call_id: str, to: str, by: str | None = None) -> None:
        """Check, then queue the transfer behind the call's own events (A5); ``by`` is who
        asked (S1). Raises ``TransferError`` (404, 409, 422) when it cannot be done now."""
        line = self.registry.line(call_id)
        check(line.call if line else None, call_id, to, self.policy)
        self.post(call_id, TransferRequested(to, None, "the API", by))

    # ----- the operator's console (issue 11) -----------------------------------------------
    # Each checks now and raises ``TransferError`` (reason, HTTP status) or ``QueueError``;
    # what is done is posted behind the call's own events.

    def request_answer(self, call_id: str | None, extension: str) -> str:
        """*Svara*: ring operator ``extension``'s phone for this caller (None: the first in
        line, A4), waiting or parked. Returns the call's id."""
        operator = self.queue.operator(extension)  # 422 first: not an operator at all
        if call_id is None:
            call_id = self.queue.first_waiting()
            if call_id is None:
                raise TransferError("nobody is waiting", 404)
        line = self.registry.line(call_id)
        if line is None:
            raise TransferError(f"no call {call_id} in progress", 404)
        state = line.call.state
        if isinstance(state, Parked):
            self.queue.check_reachable(operator)
            self.post(call_id, Unpark(extension))
        elif call_id not in self.queue.waiting:
            doing = "rings for someone" if isinstance(state, Ringing) else "is not waiting"
            raise TransferError(f"call {call_id} {doing} now: nothing to answer", 409)
        else:
            self.queue.pick(call_id, extension)
        return call_id

    def request_park(self, call_id: str, by: str) -> None:
        """*Parkera*: the caller holds, and rings the operator again after ``recall_s``."""
        line = self.registry.line(call_id)
        console.check_connected(line.call if line else None, call_id)
        self.post(call_id, ParkRequested(by))

    def request_consult(self, call_id: str, to: str, by: str) -> None:
        """*Koppla med förfrågan* to ``to``: checked as a blind transfer is (404, 409, 422)."""
        line = self.registry.line(call_id)
        check(line.call if line else None, call_id, to, self.policy)
        self.post(call_id, ConsultRequested(to, by))

    def request_consult_end(self, call_id: str, complete: bool, by: str) -> None:
        """Complete the consultation (the caller to the person asked) or take the caller back."""
        line = self.registry.line(call_id)
        console.check_consulting(line.call if line else None, call_id)
        self.post(call_id, ConsultCompleted(by) if complete else ConsultCancelled(by))

    def set_presence(self, extension: str, presence: Presence) -> None:
        """The operator logs in, pauses or logs out (A3, A6). Raises ``QueueError`` 422."""
        self.queue.set_presence(extension, presence)
        self.on_change()

    # ----- a restart (issue 13) ------------------------------------------------------------

    def adopt(
        self,
        caller: Channel,
        leg: Channel,
        bridge: str,
        record: CallRecord | None,
        legs: Sequence[Leg],
    ) -> Line:
        """Take on a call an earlier process connected: ``caller`` talks with ``leg`` in
        ``bridge``. ``record`` and ``legs`` are what the call log has (None and empty
        when it could not be read); the call goes on as if this process had made it,
        and an operator on it is busy in the queue."""
        arrived = self._arrival(caller)
        known = {one.id: one for one in legs}
        leg_record = known.get(leg.id) or Leg(
            leg.id,
            caller.id,
            leg.name.rsplit("-", 1)[0],
            _purpose(leg.id),
            _created(leg) or arrived.at,
        )
        who = _who(leg_record.endpoint)
        made = max((_number(one) for one in (*known, leg.id)), default=0)
        call = adopt(
            caller.id, arrived, leg.id, who, made, record, Context(self.clock.now(), self.policy)
        )
        line = self.registry.add(call)
        line.bridge = bridge
        self.registry.add_leg(line, LiveLeg(leg_record, who, 0, bridge=bridge))
        operator = self.queue.operators.get(who)
        if operator is not None:
            operator.call, operator.leg = caller.id, leg.id
        self.recorder.save(call.record)
        log.warning("resync: call %s connected to %s on %s adopted", caller.id, who, leg.id)
        return line

    def lost_record(self, caller: Channel) -> CallRecord:
        """A row for a call that an earlier process had and never wrote (it was killed
        before its writer flushed), made from the caller's channel: who, what was
        dialled, when the channel was created, and the route that arrival takes."""
        step = arrive(caller.id, self._arrival(caller), Context(self.clock.now(), self.policy))
        return step.call.record.note("[resync] its row was lost with the earlier process")

    def _arrival(self, caller: Channel) -> Arrived:
        """A caller's arrival as ``GET /channels`` lists its channel: the dialplan's
        Stasis() arguments, its caller id, and its creation time (Asterisk's, A1)."""
        kind, dialed = _call_kind(stasis_args(caller) or [], caller.exten)
        created = _created(caller) or self.clock.real()
        return Arrived(
            kind, caller.caller_number or caller.name, dialed, created, caller.caller_name
        )

    def fallback_record(
        self, call_id: str, kind: str, caller: str, dialed: str, at: datetime, name: str
    ) -> CallRecord:
        """A row for a call that only the dialplan fallback handled (Asterisk's CDR:
        ``kind`` is ``inbound`` or ``internal``, ``at`` its start, aware)."""
        call_kind, _ = _call_kind([kind], dialed)
        step = arrive(
            call_id, Arrived(call_kind, caller, dialed, at, name), Context(at, self.policy)
        )
        return step.call.record.note(
            "[fallback] handled by the dialplan while no controller ran (Asterisk's CDR)"
        )

    # ----- handling -------------------------------------------------------------------------

    async def handle(self, item: Item) -> None:
        try:
            if isinstance(item, StasisStart) and item.args[:1] != ("leg",):
                await self._arrived(item)
            else:
                line = self.registry.line(self.key(item))
                if line is not None:
                    await self._run(line, await self._translate(line, item))
                elif isinstance(item, Posted) and isinstance(item.event, Offered):
                    self.queue.give_back(item.call_id, item.event.extensions)  # call over
                elif isinstance(item, StasisStart):
                    await self.executor.hang_up_stray(item.channel.id)
                elif isinstance(item, Event):
                    self.on_unfollowed(item)
        finally:
            self.queue.dispatch()
            self.on_change()

    def _at(self, event: Event) -> datetime:
        # Asterisk's own time of the event (A1); the fake ARI may omit it.
        return event.timestamp or self.clock.real()

    async def _translate(self, line: Line, item: Item) -> list[CallEvent]:
        """What an event means for the call of ``line``; leg events also update the legs'
        records and the queue (the executor's mechanics)."""
        executor = self.executor
        if isinstance(item, Posted):
            if isinstance(item.event, LegGone):  # resync: a leg whose channel vanished
                return executor.leg_ended(line, item.event.leg, None, item.event.at)
            return [item.event]
        channel = item.channel_id or ""
        is_caller = channel == line.id
        if isinstance(item, StasisStart):
            return await executor.leg_ready(line, channel)
        if isinstance(item, Dial) and not is_caller:
            return executor.leg_dialled(line, channel, item.dialstatus, self._at(item))
        if isinstance(item, StasisEnd | ChannelDestroyed):
            if is_caller:
                return [CallerGone(self._at(item))]
            if isinstance(item, ChannelDestroyed):
                return executor.leg_ended(line, channel, item.cause, self._at(item))
            return []  # a leg left the app; its ChannelDestroyed tells why
        if isinstance(item, ChannelDtmfReceived) and is_caller:
            return [Digit(item.digit)]
        if isinstance(item, PlaybackFinished):
            if item.playback.id != line.playback or line.token is None:
                return []  # one we stopped
            token, line.playback, line.token = line.token, None, None
            if item.playback.state == "failed":  # the caller hung up during it
                return [PromptFailed(token)]
            return [PromptDone(token, self._at(item))]
        if isinstance(item, ChannelTransfer) and not item.state:
            # Asterisk repeats the event with each state we report: only the first asks.
            leg = line.legs.get(item.source.id)
            who = leg.who if leg is not None else item.source.id
            return [TransferRequested(item.destination, item.source.id, f"{who}'s phone (REFER)")]
        if isinstance(item, RecordingFinished | RecordingFailed) and is_caller:
            recording = item.recording
            duration = None if recording.duration_s is None else float(recording.duration_s)
            return [RecordingDone(recording.name, duration, self._at(item))]
        return []

    async def _arrived(self, event: StasisStart) -> None:
        channel = event.channel
        if self.registry.line(channel.id) is not None:
            return
        kind, dialed = _call_kind(event.args, channel.exten)
        caller = channel.caller_number or channel.name
        arrived = Arrived(kind, caller, dialed, self._at(event), channel.caller_name)
        step = arrive(channel.id, arrived, Context(self.clock.now(), self.policy))
        line = self.registry.add(step.call)
        record = step.call.record
        log.info(
            "call=%s Routing -> Arrived(%s from %s to %s) -> %s: %s",
            channel.id,
            kind.value,
            record.caller,
            record.called,
            label(step.call.state),
            record.trace[-1] if record.trace else "",
        )
        await self._act(line, step.commands, [], None)

    async def _run(self, line: Line, events: list[CallEvent]) -> None:
        if events:
            await self._act(line, (), events, line.call.record)

    async def _act(
        self,
        line: Line,
        commands: Sequence[Command],
        pending: list[CallEvent],
        record_before: CallRecord | None,
    ) -> None:
        """Carry out ``commands``, then decide every pending event in turn (what the
        commands produced first); save the record once at the end if it changed."""
        queue = list(pending)
        try:
            queue[:0] = await self.executor.run(line, commands)
            while queue:
                event = queue.pop(0)
                before = line.call.state
                step = decide(line.call, event, Context(self.clock.now(), self.policy))
                line.call = step.call
                log.info(
                    "call=%s %s -> %s -> %s",
                    line.id,
                    label(before),
                    describe(event),
                    label(step.call.state),
                )
                queue[:0] = await self.executor.run(line, step.commands)
        except AriNotFoundError as exc:
            # The caller or a leg hung up while we acted: its StasisEnd ends the call.
            log.info("call %s: %s is gone", line.id, exc.path)
        except Exception:
            log.exception("call %s: handling failed; sending the caller to the fallback", line.id)
            await self._last_resort(line)
        finally:
            record = line.call.record
            if record is not record_before:
                self.recorder.save(record)
                if record.ended_at is not None and (
                    record_before is None or record_before.ended_at is None
                ):
                    self.on_ended(record)

    async def _last_resort(self, line: Line) -> None:
        step = fall_back(line.call, Outcome.FALLBACK)
        line.call = step.call
        try:
            await self.executor.run(line, step.commands)
        except Exception:
            log.exception("call %s: even the fallback failed", line.id)


def _call_kind(args: Sequence[str], exten: str) -> tuple[CallKind, str]:
    """The kind of call and the dialled string, from the dialplan's Stasis() arguments
    (``inbound,<exten>``; ``extensions.conf``)."""
    try:
        kind = CallKind(args[0]) if args else CallKind.INBOUND
    except ValueError:
        kind = CallKind.INBOUND
    return kind, args[1] if len(args) > 1 else exten


def stasis_args(channel: Channel, app: str | None = None) -> list[str] | None:
    """The Stasis() arguments of a channel listed by ``GET /channels`` (its
    ``app_data``, after the app's name), or None when it is in no Stasis app, or in
    another than ``app`` when given."""
    dialplan = channel.raw.get("dialplan") or {}
    data = str(dialplan.get("app_data", ""))
    name, _, args = data.partition(",")
    if dialplan.get("app_name") != "Stasis" or (app is not None and name != app):
        return None
    return args.split(",") if args else []


def _created(channel: Channel) -> datetime | None:
    """The channel's creation time (Asterisk's ``creationtime``), aware; None if absent."""
    raw = str(channel.raw.get("creationtime", ""))
    try:
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


LEG_NUMBER = re.compile(r":([a-z]+)(\d+)$")


def _number(leg_id: str) -> int:
    """The n of a leg id ``<call>:<purpose><n>``: the next leg is numbered above it."""
    found = LEG_NUMBER.search(leg_id)
    return int(found.group(2)) if found else 0


def _purpose(leg_id: str) -> str:
    found = LEG_NUMBER.search(leg_id)
    return found.group(1) if found else ""


def _who(endpoint: str) -> str:
    """The extension or number a leg's endpoint reaches: ``PJSIP/1001`` -> 1001,
    ``PJSIP/0701234567@trunk`` -> 0701234567."""
    return endpoint.split("/", 1)[-1].split("@", 1)[0]


def endpoint_of(channel_name: str) -> str:
    """The extension of a channel's name: ``PJSIP/1001-00000004`` -> 1001."""
    return _who(channel_name.rsplit("-", 1)[0])


def _not_wired(item: Item) -> None:
    raise RuntimeError("CallController.submit is not set: wire it to the dispatcher")
