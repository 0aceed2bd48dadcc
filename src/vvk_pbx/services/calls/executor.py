"""The executor: the only code that calls ARI for a call, and the services a flow asks.

It runs a flow's commands in order (``run``) and keeps the mechanics out of
the flows: the playback ids, answering once, the bridge a caller joins with
its first ring, legs that join it on their own StasisStart and then dial
(``asterisk-notes.md``: before it ARI may answer 422), the legs' call-log
records, the queue's bookkeeping of operators' legs, the last resort when
the dialplan will not take a caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from vvk_pbx.ari.client import AriHttpError, AriNotFoundError
from vvk_pbx.domain.callflow import commands as cmd
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    CodeDone,
    ColleagueFound,
    InQueue,
    LegAnswered,
    LegFailed,
    LegGone,
    LegRinging,
    MailboxOpened,
    MailboxRefused,
    MessageSaved,
    ReferralLooked,
    ServiceFailed,
    TimerFired,
)
from vvk_pbx.domain.callflow.states import Purpose
from vvk_pbx.domain.calls import Leg
from vvk_pbx.domain.dialcodes import CodeError
from vvk_pbx.services.calls.registry import Line, LiveLeg, Registry
from vvk_pbx.services.calls.timers import Timers
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.operator_queue import OperatorQueue
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService

log = logging.getLogger(__name__)

# A phone's SIP REFER on our legs becomes a ChannelTransfer event for us to
# carry out, instead of Asterisk's own transfer (Asterisk >= 22.3).
ARI_TRANSFERS = {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
# An operator who picked a caller on the console gets the call on their phone's
# speaker, on phones that know either header (Call-Info: Polycom, Yealink, Snom;
# Alert-Info: Cisco, Grandstream, Yealink); others ignore them and ring.
AUTO_ANSWER = {
    "PJSIP_HEADER(add,Call-Info)": "<sip:auto-answer>;answer-after=0",
    "PJSIP_HEADER(add,Alert-Info)": "<http://127.0.0.1>;info=alert-autoanswer;delay=0",
}
# The legs' ends by Q.850 cause (ChannelDestroyed), for a leg the controller did not
# hang up: ARI's dial reports no BUSY or NOANSWER of its own (checked on 22.10).
CAUSE_STATUS = {
    17: "BUSY",
    21: "BUSY",  # declined on the phone
    18: "NOANSWER",
    19: "NOANSWER",
    1: "CHANUNAVAIL",
    3: "CHANUNAVAIL",
    20: "CHANUNAVAIL",
    27: "CHANUNAVAIL",
    38: "CHANUNAVAIL",
    34: "CONGESTION",
    41: "CONGESTION",
    42: "CONGESTION",
    44: "CONGESTION",
}
DIAL_FAILED = ("BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL", "TORTURE")
# The fallback's continue is tried this often, at once (a dropped connection is
# made anew by the next try), before the caller is hung up instead.
CONTINUE_TRIES = 3


class AriPort(Protocol):
    """What the executor needs of ARI (``vvk_pbx.ari.client.AriClient`` implements it)."""

    async def answer(self, channel_id: str) -> None: ...
    async def channel_state(self, channel_id: str) -> str | None: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def play(
        self, channel_id: str, media: Sequence[str], playback_id: str | None = None
    ) -> object: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def create_channel(
        self,
        endpoint: str,
        app_args: str,
        channel_id: str,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> object: ...
    async def transfer_progress(self, channel_id: str, state: str) -> None: ...
    async def record(
        self, channel_id: str, name: str, max_duration_s: int, max_silence_s: int
    ) -> None: ...
    async def dial(
        self, channel_id: str, caller: str | None = None, timeout_s: int = 0
    ) -> None: ...
    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str = "s", priority: int = 1
    ) -> None: ...
    async def create_bridge(self, bridge_id: str, kind: str = "mixing") -> None: ...
    async def add_to_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None: ...
    async def remove_from_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...


class Executor:
    """Carries out commands for a call (``run``) and the legs' own events."""

    def __init__(
        self,
        ari: AriPort,
        registry: Registry,
        queue: OperatorQueue,
        referrals: ReferralService,
        recorder: Recorder,
        timers: Timers,
        clock: Clock,
        post: Callable[[str, CallEvent], None],
    ) -> None:
        self.ari = ari
        self.registry = registry
        self.queue = queue
        self.referrals = referrals
        self.recorder = recorder
        self.timers = timers
        self.clock = clock
        self.post = post

    async def run(self, line: Line, commands: Sequence[cmd.Command]) -> list[CallEvent]:
        """Carry out ``commands`` in order; returns the events they produced (the answers
        of queries, legs that could not be made), to be decided before any other. A
        query that fails ends the batch with ``ServiceFailed``. ARI errors raise."""
        events: list[CallEvent] = []
        for command in commands:
            if isinstance(command, cmd.Query):
                try:
                    events.extend(await self._ask(line, command))
                except Exception as exc:  # any driver's error: the caller must not hear silence
                    log.warning("call %s: %s failed: %s", line.id, type(command).__name__, exc)
                    if isinstance(command, cmd.SaveMessage):
                        log.warning(
                            "call %s: message %s is recorded but the ledger failed; it is "
                            "added from the spool when the database answers",
                            line.id,
                            command.recording,
                        )
                    events.append(ServiceFailed(str(exc) or type(exc).__name__))
                    break
            else:
                events.extend(await self._act(line, command))
        return events

    # ----- ARI ------------------------------------------------------------------------

    async def _act(self, line: Line, command: cmd.Command) -> list[CallEvent]:
        call_id = line.id
        match command:
            case cmd.Answer():
                await self._answer(line)
            case cmd.Play(media=media, token=token):
                line.playback, line.token = line.next_playback(), token
                await self.ari.play(call_id, media, line.playback)
            case cmd.StopPrompt():
                if line.playback is not None:
                    playback, line.playback, line.token = line.playback, None, None
                    await self.ari.stop_playback(playback)
            case cmd.Ring():
                return await self._ring(line, command)
            case cmd.HangUpLegs(legs=legs, reason=reason, status=status):
                for leg_id in legs:
                    self._hung_up(line, leg_id, status)
                await quietly(*(self.ari.hangup(leg_id, reason) for leg_id in legs))
            case cmd.HangUp():
                await self.ari.hangup(call_id)
            case cmd.Record(name=name, max_s=max_s, silence_s=silence_s):
                await self.ari.record(call_id, name, max_s, silence_s)
            case cmd.StartTimer(kind=kind, delay_s=delay_s):
                fired = TimerFired(kind)
                self.timers.start((call_id, kind.value), delay_s, lambda: self.post(call_id, fired))
            case cmd.CancelTimer(kind=kind):
                self.timers.cancel((call_id, kind.value))
            case cmd.Enqueue(external=external, since=since, prefer=prefer):
                return [InQueue(self.queue.enqueue(call_id, external, since, prefer))]
            case cmd.MoveLegs(legs=legs, consult=consult):
                await self._move(line, legs, consult)
            case cmd.CloseConsult():
                if line.consult_bridge is not None:
                    bridge, line.consult_bridge = line.consult_bridge, None
                    await quietly(self.ari.destroy_bridge(bridge))
            case cmd.LeaveQueue():
                self.queue.leave(call_id)
            case cmd.GiveBack(extensions=extensions):
                self.queue.give_back(call_id, extensions)
            case cmd.ReportTransfer(leg=leg, state=state):
                await quietly(self.ari.transfer_progress(leg, state))
            case cmd.ToDialplan(context=context, extension=extension, keep=keep):
                await self._to_dialplan(line, context, extension, keep)
            case cmd.Forget(at=at):
                await self._forget(line, at)
        return []

    async def _answer(self, line: Line) -> None:
        try:
            await self.ari.answer(line.id)
        except AriHttpError as exc:
            if isinstance(exc, AriNotFoundError):
                raise
            # Under load the caller can be up already (a person answered) or
            # leaving when our answer arrives: only one still unanswered is a failure.
            state = await self.ari.channel_state(line.id)
            if state not in (None, "Up"):
                raise
            log.info("call %s: answer: %s (the caller is %s)", line.id, exc, state or "gone")

    async def _ring(self, line: Line, ring: cmd.Ring) -> list[CallEvent]:
        """Make the legs (and the bridge, with the caller in it, at the first ring) at once:
        nothing on this path waits for another."""
        now = self.clock.real()  # a log time, in Asterisk's timeline
        opening: list[Awaitable[None]] = []
        if ring.consult:
            joins = await self._consult_bridge(line)
        else:
            if line.bridge is None:
                line.bridge = f"{line.id}:bridge"
                opening.append(self._open_bridge(line.bridge, line.id))
            joins = line.bridge
        for spec in ring.legs:
            record = Leg(spec.id, line.id, spec.endpoint, ring.purpose.value, now)
            self.registry.add_leg(line, LiveLeg(record, spec.who, ring.timeout_s, bridge=joins))
            if ring.purpose is Purpose.OPERATOR:
                self.queue.ringing(line.id, spec.who, spec.id)
        variables = {**ARI_TRANSFERS, **AUTO_ANSWER} if ring.auto_answer else ARI_TRANSFERS
        steps = [self._make_leg(line, spec, variables) for spec in ring.legs]
        results = await asyncio.gather(*steps, *opening)
        return [event for event in results if isinstance(event, LegFailed)]

    async def _make_leg(
        self, line: Line, spec: cmd.LegSpec, variables: dict[str, str]
    ) -> LegFailed | None:
        try:
            await self.ari.create_channel(
                spec.endpoint, f"leg,{line.id}", spec.id, line.id, variables
            )
        except AriNotFoundError:
            raise  # the caller is gone
        except AriHttpError as exc:
            # Asterisk cannot make the channel: a phone that is not registered
            # answers 500 "Allocation failed". The others ring on.
            log.warning("call %s: cannot ring %s (%s)", line.id, spec.endpoint, exc.message)
            return self._failed(line, spec.id, "CHANUNAVAIL")
        return None

    async def _consult_bridge(self, line: Line) -> str:
        """The consultation's bridge, made when first needed."""
        if line.consult_bridge is None:
            line.consult_bridge = f"{line.id}:consult"
            await self.ari.create_bridge(line.consult_bridge)
        return line.consult_bridge

    async def _move(self, line: Line, legs: Sequence[str], consult: bool) -> None:
        """Move legs to the consultation's bridge or back to the caller's: out of the one
        they are in first (ARI adds no channel that is in another bridge)."""
        target = await self._consult_bridge(line) if consult else line.bridge
        assert target is not None, "a call with legs has its bridge"
        for leg_id in legs:
            live = line.legs.get(leg_id)
            if live is None or live.bridge == target:
                continue
            if live.bridge is not None:
                await self.ari.remove_from_bridge(live.bridge, [leg_id])
            await self.ari.add_to_bridge(target, [leg_id])
            live.bridge = target

    async def _open_bridge(self, bridge: str, caller: str) -> None:
        await self.ari.create_bridge(bridge)
        await self.ari.add_to_bridge(bridge, [caller])

    def _failed(self, line: Line, leg_id: str, status: str) -> LegFailed:
        """A leg that will not ring: ended in the log now, its operator's line released."""
        live = line.legs[leg_id]
        live.record = replace(live.record, status=status, ended_at=self.clock.real())
        self.recorder.save_leg(live.record)
        self.queue.leg_done(leg_id, status)
        return LegFailed(leg_id, status)

    def _hung_up(self, line: Line, leg_id: str, status: str | None) -> None:
        live = line.legs.get(leg_id)
        if live is None:
            return
        live.hung_up = True
        if status is not None and live.record.status != status:
            live.record = replace(live.record, status=status)
            self.recorder.save_leg(live.record)

    async def _to_dialplan(
        self, line: Line, context: str, extension: str, keep: str | None
    ) -> None:
        """The fallback: the dialplan routes the caller by the same hours. The last resort:
        retried, and a caller it will not take is hung up, never left in silence."""
        if line.playback is not None:
            # A playing channel leaves Stasis only when its playback ends.
            playback, line.playback, line.token = line.playback, None, None
            await quietly(self.ari.stop_playback(playback))
        others = [leg for leg in line.live_legs() if leg != keep]
        for leg_id in others:
            self._hung_up(line, leg_id, None)
        await quietly(*(self.ari.hangup(leg_id) for leg_id in others))
        self.queue.leave(line.id)
        self.timers.cancel_owner(line.id)
        for attempt in range(1, CONTINUE_TRIES + 1):
            try:
                await self.ari.continue_in_dialplan(line.id, context, extension)
                return
            except AriNotFoundError:
                return  # the caller hung up meanwhile
            except Exception as exc:
                log.warning(
                    "call %s: the dialplan did not take it (try %d of %d): %s",
                    line.id,
                    attempt,
                    CONTINUE_TRIES,
                    exc,
                )
        log.error(
            "call %s: the dialplan fallback failed %d times: hanging up", line.id, CONTINUE_TRIES
        )
        await quietly(self.ari.hangup(line.id))

    async def _forget(self, line: Line, at: datetime) -> None:
        """The caller is gone: the legs still up end with it (in the log at ``at``), then
        they, the bridge, the timers and the call go."""
        live = line.live_legs()
        for leg_id in live:
            leg = line.legs[leg_id]
            status = "CANCEL" if leg.record.status in ("", "RINGING") else leg.record.status
            leg.record = replace(leg.record, ended_at=at, status=status)
            self.recorder.save_leg(leg.record)
        self.queue.leave(line.id)
        self.timers.cancel_owner(line.id)
        self.registry.drop(line, self.clock.real())
        await quietly(*(self.ari.hangup(leg_id) for leg_id in live))
        bridges = [b for b in (line.bridge, line.consult_bridge) if b is not None]
        await quietly(*(self.ari.destroy_bridge(bridge) for bridge in bridges))

    # ----- the legs' own events ------------------------------------------------------------

    async def hang_up_stray(self, channel_id: str) -> None:
        """A leg of a call that is over, or of another process: nobody wants it."""
        await quietly(self.ari.hangup(channel_id))

    async def leg_ready(self, line: Line, leg_id: str) -> list[CallEvent]:
        """A leg's StasisStart: it joins the caller's bridge and dials; a leg the call no
        longer wants is hung up."""
        live = line.legs.get(leg_id)
        if live is None or live.hung_up or live.bridge is None or live.record.ended_at:
            await self.ari.hangup(leg_id)
            return []
        try:
            await asyncio.gather(
                self.ari.add_to_bridge(live.bridge, [leg_id]),
                self.ari.dial(leg_id, caller=line.id, timeout_s=live.timeout_s),
            )
        except AriNotFoundError:
            return []  # gone already: its ChannelDestroyed ends it
        except AriHttpError as exc:
            log.warning("call %s: leg %s cannot dial: %s", line.id, leg_id, exc)
            await quietly(self.ari.hangup(leg_id))
            return [self._failed(line, leg_id, "CHANUNAVAIL")]
        return []

    def leg_dialled(self, line: Line, leg_id: str, status: str, at: datetime) -> list[CallEvent]:
        """A Dial event of a leg (``at``: Asterisk's time): its log record, and the event for
        the flow."""
        live = line.legs.get(leg_id)
        if live is None or live.record.ended_at is not None:
            return []
        record = live.record
        event: CallEvent | None = None
        if status == "RINGING" and record.ring_started_at is None:
            record = replace(record, ring_started_at=at, status="RINGING")
            event = LegRinging(leg_id, at)
        elif status == "ANSWER":
            record = replace(record, answered_at=at, status="ANSWER")
            event = LegAnswered(leg_id, live.who, at)
        elif status in DIAL_FAILED:
            record = replace(record, status=status)
            self.queue.leg_done(leg_id, status)
            event = LegFailed(leg_id, status)
        if record != live.record:
            live.record = record
            self.recorder.save_leg(record)
        return [event] if event is not None else []

    def leg_ended(
        self, line: Line, leg_id: str, cause: int | None, at: datetime
    ) -> list[CallEvent]:
        """A leg's channel is destroyed (``cause``: Q.850, None when only its absence was seen):
        its end and status in the log, its operator's line released, ``LegGone`` for the flow.

        A leg that rang and was not answered ends as why its phone ended it (BUSY,
        NOANSWER, ...), or CANCEL when the controller hung it up (another phone won).
        """
        live = line.legs.get(leg_id)
        if live is None or live.record.ended_at is not None:
            return []
        status = live.record.status
        if status in ("", "RINGING"):
            mapped = CAUSE_STATUS.get(cause or 0)
            status = "CANCEL" if live.hung_up or mapped is None else mapped
        live.record = replace(live.record, ended_at=at, status=status)
        self.recorder.save_leg(live.record)
        self.registry.owner.pop(leg_id, None)
        self.queue.leg_done(leg_id, status)
        return [LegGone(leg_id, at)]

    # ----- the services the flows ask -----------------------------------------------------

    async def _ask(self, line: Line, query: cmd.Query) -> list[CallEvent]:
        now = self.clock.now()
        service = self.referrals
        match query:
            case cmd.LookUpReferral(person=person):
                referral, greeting = await service.greeting(person, now)
                if referral is None:
                    return [ReferralLooked(None, None, tuple(greeting))]
                reason = service.reasons.get(referral.reason)
                name = reason.name if reason else str(referral.reason)
                return [ReferralLooked(name, referral.end, tuple(greeting))]
            case cmd.FindColleague(person=person):
                return [ColleagueFound(await service.colleague(person, now))]
            case cmd.CarryOutCode(extension=extension, dialed=dialed):
                reply = await service.dial_code(extension, dialed, now)
                return [CodeDone(tuple(reply.prompts), reply.note, reply.then_pin)]
            case cmd.OpenMailbox(extension=extension, pin=pin):
                try:
                    messages = await service.open_mailbox(extension, pin, now)
                except CodeError as exc:
                    return [MailboxRefused(exc.problem, exc.detail)]
                return [MailboxOpened(tuple(messages))]
            case cmd.MarkMessage(message_id=message_id, status=status):
                await service.mark(message_id, status, now)
                return []
            case cmd.SaveMessage():
                message = await service.message_left(
                    query.person,
                    query.caller,
                    line.id,
                    query.left_at,
                    query.duration_s,
                    query.recording,
                )
                return [MessageSaved(message)]
        return []


async def quietly(*steps: Awaitable[object]) -> None:
    """Cleanup steps that may fail without harm (a channel already gone): run together,
    failures other than 404 logged."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not isinstance(result, AriNotFoundError):
            log.warning("cleanup step failed: %s", result)
