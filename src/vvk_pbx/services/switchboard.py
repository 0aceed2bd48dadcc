"""The call controller: one state machine per call, driven by ARI events in order per call.

Routing is decided in ``domain.routing`` at the instant a call arrives; this
module carries the decision out through the ARI port and records each state
change through the recorder:

- answering machine (H5): answer, play the message, connect a pressed on-call
  digit, repeat once, then say goodbye and hang up;
- operator queue (A3): ring every operator at once, no prompt in front; the
  first to answer gets the caller (A1 timing from Asterisk's timestamps);
- extension (A5): ring that phone.

Any unexpected error sends the caller to the dialplan fallback, never into
silence. Leg channels are named ``<call id>:<purpose><n>`` and carry the
Stasis argument ``leg``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
import wave
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from vvk_pbx.ari.client import AriHttpError, AriNotFoundError
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
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.announcements import answering_machine, sound
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.dialcodes import CodeError, Problem
from vvk_pbx.domain.queue import OperatorLine, Waiting, in_order, offers
from vvk_pbx.domain.routing import Action, CallKind, digits, route
from vvk_pbx.domain.voicemail import Message, Status
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService

log = logging.getLogger(__name__)

FALLBACK_INBOUND = "vvk-fallback-inbound"
FALLBACK_INTERNAL = "vvk-fallback-internal"
# A phone that answered one of these is not tried again for a while: it is
# on another call, or offline (A6 keeps the caller in line meanwhile).
UNAVAILABLE = ("BUSY", "CHANUNAVAIL", "CONGESTION")
UNAVAILABLE_S = 30
RINGBACK = "tone:ring;tonezone=se"  # the Swedish ring cadence, until stopped
PIN_WAIT_S = 10  # after the PIN prompt, how long to wait for the first key
# How long a call this process ended is never taken for an orphan (seconds): far
# longer than the call log's writer ever keeps a write pending.
FINISHED_KEEP_S = 3600
# States in which no leg is ringing for the call, so a leg that ends is no news.
CALLER_WITH_US = ("done", "waiting", "menu", "voicemail-prompt", "recording", "voicemail-saved")
# A voicemail recording's name: vm-<extension>-<call id> (the call id is the
# caller's channel id, which is also the message's id in the ledger).
VOICEMAIL_NAME = re.compile(r"^vm-([0-9]{2,6})-(.+)$")
# A phone's SIP REFER on our legs becomes a ChannelTransfer event for us to
# carry out, instead of Asterisk's own transfer (Asterisk >= 22.3).
ARI_TRANSFERS = {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
FAILED_LEG = (
    "BUSY",
    "NOANSWER",
    "CHANUNAVAIL",
    "CONGESTION",
    "CANCEL",
    "DONTCALL",
    "TORTURE",
    "INVALIDARGS",
)


class AriPort(Protocol):
    """What the controller needs from ARI (``vvk_pbx.ari.client.AriClient`` implements it)."""

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
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def stored_recordings(self) -> list[str]: ...
    async def stored_recording_file(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class Offer(Event):
    """Internal: ring these operators for the call (posted to the call's own worker)."""

    call_id: str
    extensions: tuple[str, ...]

    @property
    def channel_id(self) -> str | None:
        return self.call_id


@dataclass(frozen=True)
class Overflow(Event):
    """Internal: the call has waited ``queue.overflow_after_s`` for a person (A6)."""

    call_id: str

    @property
    def channel_id(self) -> str | None:
        return self.call_id


@dataclass(frozen=True)
class Timeout(Event):
    """Internal: a caller expected to press keys in ``state`` has pressed nothing for a while."""

    call_id: str
    state: str
    playbacks: int  # the prompt it waits after: a later prompt makes it stale

    @property
    def channel_id(self) -> str | None:
        return self.call_id


@dataclass(frozen=True)
class Transfer(Event):
    """Internal: transfer the call to an extension (``POST /calls/{id}/transfer``)."""

    call_id: str
    to: str

    @property
    def channel_id(self) -> str | None:
        return self.call_id


class TransferError(Exception):
    """The call cannot be transferred now: ``reason`` says why (for the API's error body)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def internal_event(
    cls: type[Offer] | type[Overflow] | type[Transfer] | type[Timeout],
    call_id: str,
    **fields: object,
) -> Event:
    return cls(cls.__name__, "", None, {}, call_id=call_id, **fields)  # type: ignore[arg-type]


@dataclass
class OperatorState:
    """One operator's line as the queue tracks it: the call it rings or talks on, if any."""

    extension: str
    idle_since: datetime
    call: str | None = None  # reserved for, ringing for or talking on this call
    leg: str | None = None  # the leg that rings or talks: None while only reserved
    unavailable_until: datetime | None = None

    def free(self, now: datetime) -> bool:
        return self.call is None and (
            self.unavailable_until is None or self.unavailable_until <= now
        )


@dataclass
class Call:
    """The controller's state of one call, keyed by the caller's channel id."""

    record: CallRecord
    caller: Channel
    action: Action
    state: str = "new"  # announcing, goodbye, ringing, connected, done
    playback: str | None = None
    playbacks: int = 0
    repeats: int = 0
    answered: bool = False  # the caller's channel is answered (by us or a person)
    bridge: str | None = None
    legs: dict[str, Leg] = field(default_factory=dict)
    leg_names: dict[str, str] = field(default_factory=dict)  # leg id -> who (extension/number)
    connected_leg: str | None = None
    success: Outcome = Outcome.ANSWERED
    timeouts: dict[str, int] = field(default_factory=dict)  # leg id -> dial timeout, s
    overflow_timer: asyncio.TimerHandle | None = None
    overflowed: bool = False
    transferring: bool = False  # a transfer's target rings; unanswered, back to the queue
    person: str | None = None  # the extension the caller wants (A5, R5)
    recording: str | None = None  # the voicemail recording's name while one is made
    recording_started: datetime | None = None
    message_saved: bool = False
    digits: str = ""  # DTMF collected for a PIN
    pin_tries: int = 0
    mailbox: list[Message] = field(default_factory=list)  # messages still to play (V1)
    message: Message | None = None  # the one playing

    @property
    def id(self) -> str:
        return self.record.id


class Switchboard:
    """Handles every event of the app; ``key`` tells the dispatcher which call an event is for."""

    def __init__(
        self,
        ari: AriPort,
        recorder: Recorder,
        settings: Settings,
        calendar: Calendar,
        clock: Callable[[], datetime],
        referrals: ReferralService,
        post: Callable[[Event], None] | None = None,
    ) -> None:
        """``post`` queues an internal event behind the call's own (the dispatcher's
        ``submit``); without it, internal events run as their own tasks (tests)."""
        self.ari = ari
        self.recorder = recorder
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        self.numbering = settings.numbering()
        self.calls: dict[str, Call] = {}
        # Calls this process saw end (id -> loop time), for close_orphans: their last
        # write may still be on its way to the database (a lock, an outage), so an
        # open row of theirs is not an orphan. Kept FINISHED_KEEP_S.
        self.finished: dict[str, float] = {}
        self.leg_owner: dict[str, str] = {}
        self.on_call = {s.digit: s for s in settings.on_call}
        self.post = post or self._run_soon
        self.referrals = referrals
        started = _real_now()
        self.operators = {
            o.extension: OperatorState(o.extension, started) for o in settings.operators
        }
        self.waiting: dict[str, Waiting] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _run_soon(self, event: Event) -> None:
        task = asyncio.create_task(self.handle(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- dispatch ----------------------------------------------------------------------

    def key(self, event: Event) -> str:
        """Events of a call's legs are ordered with the call's own."""
        channel = event.channel_id or ""
        return self.leg_owner.get(channel, channel)

    async def handle(self, event: Event) -> None:
        call_id = self.key(event)
        try:
            await self._handle(event)
        except AriNotFoundError as exc:
            # The caller or a leg hung up while we acted: its StasisEnd ends the call.
            log.info("call %s: %s is gone (%s)", call_id, exc.path, event.type)
        except Exception:
            log.exception(
                "call %s: handling %s failed; sending the caller to the fallback",
                call_id,
                event.type,
            )
            await self._to_fallback(call_id)

    async def _handle(self, event: Event) -> None:
        if isinstance(event, Offer):
            await self._offered(event)
            return
        if isinstance(event, Overflow):
            await self._overflow(event.call_id)
            return
        if isinstance(event, Timeout):
            waiting = self.calls.get(event.call_id)
            if (
                waiting is not None
                and waiting.state == event.state
                and waiting.playbacks == event.playbacks
                and not waiting.digits
            ):
                waiting.record = waiting.record.note(f"[V1] no keys pressed in {event.state}")
                waiting.state = "informing"
                await self._play(waiting, [sound("goodbye")])
            return
        if isinstance(event, Transfer):
            transferring = self.calls.get(event.call_id)
            if transferring is not None and transferring.connected_leg is not None:
                await self._transfer(transferring, event.to, "the API")
            return
        if isinstance(event, StasisStart):
            if event.args[:1] == ("leg",):
                await self._leg_started(event)
            else:
                await self._arrived(event)
            return
        call = self.calls.get(self.key(event))
        if call is None:
            return
        if isinstance(event, ChannelDtmfReceived) and event.channel.id == call.id:
            await self._digit(call, event.digit)
        elif isinstance(event, PlaybackFinished) and event.playback.id == call.playback:
            if event.playback.state == "failed":  # the caller hung up mid-message
                call.playback = None
            else:
                await self._playback_finished(call, self._when(event))
        elif isinstance(event, Dial) and event.peer.id in call.legs:
            await self._dial(call, event)
        elif isinstance(event, ChannelTransfer) and not event.state:
            await self._referred(call, event)
        elif isinstance(event, RecordingFinished | RecordingFailed) and (
            event.recording.name == call.recording
        ):
            await self._recorded(call, event.recording.duration_s, self._when(event))
            if call.state == "recording":
                call.state = "voicemail-saved"
                await self._play(call, [sound("voicemail-saved")])
        elif isinstance(event, (StasisEnd, ChannelDestroyed)):
            if event.channel.id == call.id:
                await self._caller_gone(call, self._when(event))
            elif event.channel.id in call.legs:
                await self._leg_gone(call, event.channel.id, self._when(event))

    def _when(self, event: Event) -> datetime:
        # Asterisk's own time of the event (A1); the fake ARI may omit it.
        return event.timestamp or _real_now()

    # ----- arrival ------------------------------------------------------------------------

    async def _arrived(self, event: StasisStart) -> None:
        channel = event.channel
        if channel.id in self.calls:
            return
        kind = CallKind(event.args[0]) if event.args else CallKind.INBOUND
        dialed = event.args[1] if len(event.args) > 1 else channel.exten
        caller = channel.caller_number or channel.name
        now = self.clock()
        decision = route(kind, caller, dialed, now, self.calendar, self.numbering)
        record = CallRecord.arrive(channel.id, caller, dialed, self._when(event), decision)
        call = Call(record, channel, decision.action)
        self.calls[channel.id] = call
        log.info(
            "call %s from %s to %s: %s (%s)",
            channel.id,
            caller,
            dialed,
            decision.action.value,
            decision.trace[-1],
        )
        if decision.action is Action.ANSWERING_MACHINE:
            self._save(call)
            await self._announce(call, first=True)
        elif decision.action is Action.OPERATOR_QUEUE:
            self._queue(call)
            self._arm_overflow(call)
            if call.id in self.waiting:  # nobody free: welcome and ringback (A3)
                await self._hold(call)
            self._save(call)  # after the phones ring: no write in front of them
        elif decision.action is Action.EXTENSION and decision.target is not None:
            await self._to_person(call, decision.target)
            self._save(call)
        elif decision.action is Action.FEATURE_CODE:
            await self._dial_code(call, dialed)
        else:
            # The dialplan says so in words, as it does without the controller.
            self._finish(call, self._when(event), Outcome.UNKNOWN_NUMBER, "no such number")
            await self.ari.continue_in_dialplan(channel.id, FALLBACK_INTERNAL, dialed)

    # ----- staff dial codes (R2, R4) --------------------------------------------------------

    async def _dial_code(self, call: Call, dialed: str) -> None:
        """Answer, carry the code out, read it back (or say why not), hang up."""
        await self.ari.answer(call.id)
        call.answered = True
        try:
            reply = await self.referrals.dial_code(call.record.caller, dialed, self.clock())
            prompts, note, then_pin = reply.prompts, reply.note, reply.then_pin
        except Exception:
            log.exception("call %s: dial code %r failed", call.id, dialed)
            prompts, note = ["fallback-feature-unavailable"], "[R2] the referral store failed"
            then_pin = False
        call.record = call.record.note(note)
        call.state = "pin-entry" if then_pin else "informing"
        self._save(call)
        await self._play(call, [sound(p) for p in prompts])

    async def _pin_digit(self, call: Call, digit: str) -> None:
        """A digit of the PIN for the caller's own mailbox; ``#`` ends it (V1)."""
        if digit != "#":
            call.digits = (call.digits + digit)[-16:]
            return
        pin, call.digits = call.digits, ""
        if call.playback is not None:
            await self.ari.stop_playback(call.playback)
            call.playback = None
        try:
            call.mailbox = await self.referrals.open_mailbox(call.record.caller, pin, self.clock())
        except CodeError as exc:
            call.pin_tries += 1
            call.record = call.record.note(f"[V1] mailbox refused: {exc}")
            # In the mailbox nothing was to be saved: a wrong PIN is only "Fel PIN-kod".
            wrong = exc.problem is Problem.WRONG_PIN
            error = sound("voicemail-wrong-pin" if wrong else f"code-error-{exc.problem.value}")
            if wrong and call.pin_tries < 3:
                await self._play(call, [error, sound("voicemail-pin")])
            else:
                call.state = "informing"
                await self._play(call, [error])
            return
        call.record = call.record.note(f"[V1] mailbox opened: {len(call.mailbox)} message(s)")
        await self._next_message(call, [] if call.mailbox else ["voicemail-none"])

    async def _next_message(self, call: Call, first: Sequence[str] = ()) -> None:
        """Play the next message of the mailbox with the menu, or say there are no more."""
        if not call.mailbox:
            call.state, call.message = "informing", None
            prompts = [*first, "voicemail-end"] if "voicemail-none" not in first else [*first]
            await self._play(call, [sound(p) for p in prompts])
            return
        message = call.message = call.mailbox.pop(0)
        call.state = "vm-playing"
        await self.referrals.mark(message.id, Status.HEARD, _real_now())
        caller = [sound(f"num-{d}") for d in digits(message.caller)]
        await self._play(
            call,
            [
                *(sound(p) for p in first),
                sound("voicemail-message"),
                *caller,
                f"recording:{message.recording}",
                sound("voicemail-menu"),
            ],
        )

    async def _message_choice(self, call: Call, digit: str) -> None:
        """1 next, 3 delete, 5 called back (V1, V2)."""
        if digit not in ("1", "3", "5") or call.message is None:
            return
        if call.playback is not None:
            await self.ari.stop_playback(call.playback)
            call.playback = None
        said: list[str] = []
        if digit == "3":
            await self.referrals.mark(call.message.id, Status.DELETED, _real_now())
            said = ["voicemail-deleted"]
        elif digit == "5":
            await self.referrals.mark(call.message.id, Status.CALLED_BACK, _real_now())
            said = ["voicemail-called-back"]
        call.record = call.record.note(f"[V1] message {call.message.id}: pressed {digit}")
        await self._next_message(call, said)

    # ----- answering machine (H5) ---------------------------------------------------------

    async def _announce(self, call: Call, first: bool) -> None:
        if not call.answered:
            await self.ari.answer(call.id)
            call.answered = True
        now = self.clock().astimezone(self.calendar.tz)
        status = self.calendar.status(now)
        media = answering_machine(now, status.next_change, self.on_call)
        if not first:
            media = [sound("repeat"), *media]
        call.state = "announcing"
        await self._play(call, media)

    async def _play(self, call: Call, media: Sequence[str]) -> None:
        call.playbacks += 1
        call.playback = f"{call.id}:pb{call.playbacks}"
        await self.ari.play(call.id, media, call.playback)

    async def _playback_finished(self, call: Call, when: datetime) -> None:
        call.playback = None
        if call.state == "announcing":
            if call.repeats == 0:
                call.repeats = 1
                await self._announce(call, first=False)
            else:
                call.state = "goodbye"
                await self._play(call, [sound("goodbye")])
        elif call.state == "goodbye":
            self._finish(call, when, Outcome.CLOSED, "H5: message played twice; goodbye")
            await self.ari.hangup(call.id)
        elif call.state == "informing":
            self._finish(call, when, Outcome.FEATURE_CODE, "the code was read back")
            await self.ari.hangup(call.id)
        elif call.state == "menu":
            if call.repeats < 2:
                call.repeats += 1
                await self._play(call, [sound("referral-menu")])
            elif call.record.answered_at is not None and self.calendar.is_open(self.clock()):
                # An operator's transfer nobody took, and no choice: back to the
                # switchboard rather than a dropped caller (A6).
                call.record = call.record.note("[A6] no choice after a transfer: the switchboard")
                await self._to_switchboard(call)
            else:
                call.state = "bye"
                await self._play(call, [sound("goodbye")])
        elif call.state == "bye":
            self._finish(call, when, Outcome.REFERRED, "R5: no choice made; goodbye")
            await self.ari.hangup(call.id)
        elif call.state == "voicemail-prompt":
            await self._record(call)
        elif call.state == "vm-playing":
            await self._next_message(call)  # no choice: on to the next one
        elif call.state == "pin-entry" and not call.digits:
            # The PIN prompt ended and nothing was pressed: wait a little, then goodbye.
            asyncio.get_running_loop().call_later(
                PIN_WAIT_S,
                self.post,
                internal_event(Timeout, call.id, state="pin-entry", playbacks=call.playbacks),
            )
        elif call.state == "voicemail-saved":
            self._finish(call, when, Outcome.VOICEMAIL, "V1: the message is saved")
            await self.ari.hangup(call.id)

    async def _digit(self, call: Call, digit: str) -> None:
        if call.state == "menu":
            await self._menu_choice(call, digit)
            return
        if call.state == "pin-entry":
            await self._pin_digit(call, digit)
            return
        if call.state == "vm-playing":
            await self._message_choice(call, digit)
            return
        service = self.on_call.get(digit)
        if call.state not in ("announcing", "goodbye") or service is None:
            return
        call.record = call.record.note(
            f"[H5] pressed {digit}: connect {service.name} ({service.number})"
        )
        if call.playback is not None:
            await self.ari.stop_playback(call.playback)
            call.playback = None
        call.success = Outcome.ON_CALL_TRANSFER
        self._save(call)
        number = digits(service.number)
        await self._ring(
            call, [(f"PJSIP/{number}@trunk", number)], "oncall", self.settings.ring.timeout_s
        )
        await self._play(call, [RINGBACK])

    # ----- a person's phone, referrals and voicemail (A5, R5, V1) ---------------------------

    async def _to_person(self, call: Call, extension: str, purpose: str = "ext") -> None:
        """Ring the person, or tell the caller about the referral in force and offer the menu.

        The seam for referrals (R5): direct calls, internal calls and operator
        transfers all reach a person through here.
        """
        call.person = extension
        if extension in self.referrals.staff:
            referral, greeting = await self.referrals.greeting(extension, self.clock())
            if referral is not None:
                reason = self.referrals.reasons.get(referral.reason)
                call.record = call.record.note(
                    f"[R5] {extension} is referred ({reason.name if reason else referral.reason})"
                    f" until {referral.end.astimezone(self.calendar.tz).isoformat()}"
                )
                await self._menu(call, greeting)
                return
            ring = self.settings.ring
            timeout_s = max(1, ring.person_rings * ring.cycle_ms // 1000)
        else:
            timeout_s = self.settings.ring.timeout_s  # an operator: no menu behind
        await self._ring(call, [(f"PJSIP/{extension}", extension)], purpose, timeout_s)

    async def _menu(self, call: Call, greeting: Sequence[str]) -> None:
        """The referral sentence (if any), then 1 colleague, 2 voicemail, 0 switchboard (R5)."""
        if call.playback is not None:
            await self.ari.stop_playback(call.playback)
            call.playback = None
        if not call.answered:
            await self.ari.answer(call.id)
            call.answered = True
        call.state, call.repeats, call.success = "menu", 0, Outcome.REFERRED
        self._save(call)
        await self._play(call, [sound(p) for p in (*greeting, "referral-menu")])

    async def _menu_choice(self, call: Call, digit: str) -> None:
        if digit not in ("0", "1", "2"):
            return
        if call.playback is not None:
            await self.ari.stop_playback(call.playback)
            call.playback = None
        person = call.person or ""
        if digit == "1":
            colleague = await self.referrals.colleague(person, self.clock())
            if colleague is None:
                call.record = call.record.note(f"[A5] pressed 1: no colleague of {person} free")
                await self._play(call, [sound("no-colleague"), sound("referral-menu")])
                return
            call.record = call.record.note(f"[A5] pressed 1: colleague {colleague}")
            call.state, call.success = "ringing", Outcome.COLLEAGUE
            self._save(call)
            await self._ring(
                call,
                [(f"PJSIP/{colleague}", colleague)],
                "col",
                self.settings.ring.person_rings * self.settings.ring.cycle_ms // 1000,
            )
            await self._play(call, [RINGBACK])
        elif digit == "2":
            call.record = call.record.note(f"[V1] pressed 2: voicemail for {person}")
            call.state = "voicemail-prompt"
            self._save(call)
            await self._play(call, [sound("voicemail-leave")])
        else:
            await self._to_switchboard(call)

    async def _to_switchboard(self, call: Call) -> None:
        """0 in the menu: the operators if the switchboard is open, else its answering machine."""
        call.person = None  # the person's menu is behind the caller now
        if self.calendar.is_open(self.clock()):
            call.record = call.record.note("[R5] pressed 0: to the switchboard")
            call.action, call.success = Action.OPERATOR_QUEUE, Outcome.ANSWERED
            self._save(call)
            self._queue(call)
            self._arm_overflow(call)
            if call.id in self.waiting:
                await self._hold(call)
            else:
                await self._play(call, [RINGBACK])
        else:
            call.record = call.record.note("[R5] pressed 0: the switchboard is closed")
            call.action, call.success = Action.ANSWERING_MACHINE, Outcome.ANSWERED
            self._save(call)
            await self._announce(call, first=True)

    async def _record(self, call: Call) -> None:
        voicemail = self.settings.voicemail
        call.state = "recording"
        call.recording = f"vm-{call.person}-{call.id}"
        call.recording_started = _real_now()
        await self.ari.record(call.id, call.recording, voicemail.max_s, voicemail.silence_s)

    async def _recorded(self, call: Call, duration_s: float | None, when: datetime) -> None:
        """The message is recorded (at ``when``, Asterisk's time): into the callback
        ledger with its deadline (V1, V2)."""
        if call.recording is None or call.message_saved:
            return
        call.message_saved = True
        if duration_s is None:  # the caller hung up: measured by our own clock
            started = call.recording_started or when
            duration_s = max(0.0, (when - started).total_seconds())
        person, recording = call.person or "", call.recording
        try:
            message = await self.referrals.message_left(
                person, call.record.caller, call.id, when, duration_s, recording
            )
        except Exception as exc:
            # The audio is safe in the spool: recover_messages puts it in the
            # ledger once the database answers again (within RECOVER_S).
            log.warning(
                "call %s: message %s is recorded but the ledger failed (%s); "
                "it is added from the spool when the database answers",
                call.id,
                recording,
                exc,
            )
            call.record = call.record.note(
                f"[V2] message {recording} recorded; the ledger failed, it is added later"
            )
            call.success = Outcome.VOICEMAIL
            call.record = replace(call.record, outcome=Outcome.VOICEMAIL)
            self._save(call)
            return
        call.record = call.record.note(
            f"[V2] message {message.id} for {message.extension}, {duration_s:.0f} s; "
            f"call back by {message.deadline_at.isoformat()}"
        )
        call.success = Outcome.VOICEMAIL
        call.record = replace(call.record, outcome=Outcome.VOICEMAIL)
        self._save(call)

    # ----- operator queue (A3, A4, A6) ------------------------------------------------------

    def _queue(self, call: Call) -> None:
        """Put the call in line for an operator and offer whatever is free now."""
        self.waiting[call.id] = Waiting(
            call.id, call.record.direction == "external", call.record.arrived_at
        )
        self._dispatch()

    def _dispatch(self) -> None:
        """Reserve free operators for the calls first in line and post the offers.

        Synchronous, so two handlers never reserve the same operator; the
        ringing itself happens on each call's own worker (``Offer``).
        """
        now = self.clock()  # the same clock as the busy pause (_release_leg)
        queue = self.settings.queue
        lines = [
            OperatorLine(op.extension, op.free(now), op.idle_since)
            for op in self.operators.values()
        ]
        ordered = in_order(self.waiting.values(), queue.internal_delay_s)
        for call_id, extensions in offers(queue.strategy, ordered, lines):
            self.waiting.pop(call_id, None)
            for extension in extensions:
                op = self.operators[extension]
                op.call, op.leg = call_id, None
            self.post(internal_event(Offer, call_id, extensions=extensions))

    async def _offered(self, offer: Offer) -> None:
        call = self.calls.get(offer.call_id)
        if call is None or call.state == "done" or call.connected_leg is not None:
            for extension in offer.extensions:  # nobody to ring for: give them back
                op = self.operators[extension]
                if op.call == offer.call_id and op.leg is None:
                    op.call = None
            self._dispatch()
            return
        queue = self.settings.queue
        timeout_s = self.settings.ring.timeout_s if queue.strategy == "ring-all" else queue.offer_s
        targets = [(f"PJSIP/{ext}", ext) for ext in offer.extensions]
        leg_ids = self._add_legs(call, targets, "op", timeout_s)
        for extension, leg_id in zip(offer.extensions, leg_ids, strict=True):
            self.operators[extension].leg = leg_id
        if call.record.ring_started_at is None and call.answered:
            # A waiting caller has heard the welcome: note who is offered the call.
            call.record = call.record.note(f"[A4] offered to {', '.join(offer.extensions)}")
        await self._start_legs(call, leg_ids)

    async def _hold(self, call: Call) -> None:
        """Nobody is free: the welcome prompt, then ringback until an operator answers (A3)."""
        if call.state != "waiting":
            call.record = call.record.note("[A3] no operator free: welcome, then ringback")
        call.state = "waiting"
        if not call.answered:
            await self.ari.answer(call.id)
            call.answered = True
        if call.playback is None:
            await self._play(call, [sound("welcome"), sound("please-hold"), RINGBACK])

    def _arm_overflow(self, call: Call) -> None:
        after_s = self.settings.queue.overflow_after_s
        call.overflow_timer = asyncio.get_running_loop().call_later(
            after_s, self.post, internal_event(Overflow, call.id)
        )

    async def _overflow(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is None or call.state == "done" or call.connected_leg is not None:
            return
        self.waiting.pop(call.id, None)
        call.overflowed = True
        after_s = self.settings.queue.overflow_after_s
        for leg_id, leg in call.legs.items():
            if leg.ended_at is None and leg.purpose == "op":
                await _quietly(self.ari.hangup(leg_id))
        self._release_call(call, _real_now())
        targets = self.settings.overflow_extensions()
        if not targets:
            call.record = call.record.note(
                f"[A6] no person answered in {after_s} s, no overflow group: dialplan fallback"
            )
            await self._to_fallback(call.id, Outcome.NO_ANSWER)
            return
        call.record = call.record.note(
            f"[A6] no person answered in {after_s} s: overflow to {', '.join(targets)}"
        )
        self._save(call)
        if call.answered and call.playback is None:
            await self._play(call, [RINGBACK])
        await self._ring(
            call, [(f"PJSIP/{ext}", ext) for ext in targets], "ovf", self.settings.ring.timeout_s
        )

    def _release_leg(self, call: Call, leg_id: str, when: datetime, status: str = "") -> None:
        """The operator of this leg is free again (or unavailable for a while after BUSY).

        The caller dispatches afterwards, once the call itself is back in line if
        it goes there: it keeps its place ahead of later callers (A4).
        """
        op = self.operators.get(call.leg_names.get(leg_id, ""))
        if op is None or op.leg != leg_id:
            return
        op.call = op.leg = None
        op.idle_since = when
        if status in UNAVAILABLE:
            # The controller's clock, as _dispatch compares: never an event's timestamp.
            op.unavailable_until = self.clock() + timedelta(seconds=UNAVAILABLE_S)
            asyncio.get_running_loop().call_later(UNAVAILABLE_S, self._dispatch)

    def _release_call(self, call: Call, when: datetime) -> None:
        """Every operator reserved for, ringing for or talking on the call is free again."""
        released = False
        for op in self.operators.values():
            if op.call == call.id:
                op.call = op.leg = None
                op.idle_since = when
                released = True
        self.waiting.pop(call.id, None)
        if released:
            self._dispatch()

    # ----- transfer (A5) -----------------------------------------------------------------

    def check_transfer(self, call_id: str, to: str) -> None:
        """Raise ``TransferError`` unless the call can be transferred to ``to`` now (the API)."""
        call = self.calls.get(call_id)
        if call is None or call.state == "done":
            raise TransferError(f"no call {call_id} in progress", 404)
        if call.connected_leg is None:
            raise TransferError(f"call {call_id} is not connected to anyone to transfer it", 409)
        if to not in self.numbering.extensions:
            raise TransferError(f"{to!r} is not an extension in the directory", 422)
        if call.leg_names.get(call.connected_leg) == to:
            raise TransferError(f"call {call_id} is already connected to {to}", 409)

    def request_transfer(self, call_id: str, to: str) -> None:
        """Check, then queue the transfer behind the call's own events (``POST /calls/{id}/transfer``)."""
        self.check_transfer(call_id, to)
        self.post(internal_event(Transfer, call_id, to=to))

    async def _referred(self, call: Call, event: ChannelTransfer) -> None:
        # A phone in the call sent REFER (a blind transfer from the phone).
        by = event.source.id
        if by != call.connected_leg:
            await _quietly(self.ari.transfer_progress(by, "channel_declined"))
            return
        if event.destination == call.leg_names[by]:
            await _quietly(self.ari.transfer_progress(by, "channel_declined"))
            return
        if event.destination not in self.numbering.extensions:
            log.info("call %s: REFER to unknown %r declined", call.id, event.destination)
            call.record = call.record.note(
                f"[A5] transfer to {event.destination!r} refused: not an extension"
            )
            self._save(call)
            await _quietly(self.ari.transfer_progress(by, "channel_declined"))
            return
        await self._transfer(call, event.destination, f"{call.leg_names[by]}'s phone (REFER)")

    async def _transfer(self, call: Call, to: str, how: str) -> None:
        """Blind transfer: the person who has the caller hands them to extension ``to``.

        The caller hears ringback while ``to`` rings; the transferring leg ends
        at once. If ``to`` is an operator who does not answer, the caller goes
        back to the operator queue (A6); a person with a referral in force does
        not ring, and a person who does not answer gives the menu (R5).
        """
        by = call.connected_leg
        assert by is not None
        who = call.leg_names[by]
        call.record = call.record.note(f"[A5] transferred by {who} to {to} via {how}")
        call.connected_leg = None
        call.transferring = True
        self._save(call)
        await _quietly(self.ari.transfer_progress(by, "channel_answered"))
        await _quietly(self.ari.hangup(by))
        await self._play(call, [RINGBACK])
        await self._to_person(call, to, "xfer")

    # ----- ringing phones ----------------------------------------------------------------------

    async def _ring(
        self, call: Call, targets: Sequence[tuple[str, str]], purpose: str, timeout_s: int
    ) -> list[str]:
        """Ring ``(endpoint, who)`` targets for the call; the caller hears ringing meanwhile.

        Returns the new legs' ids, in target order.
        """
        leg_ids = self._add_legs(call, targets, purpose, timeout_s)
        await self._start_legs(call, leg_ids)
        return leg_ids

    def _add_legs(
        self, call: Call, targets: Sequence[tuple[str, str]], purpose: str, timeout_s: int
    ) -> list[str]:
        now = _real_now()  # a log time: Asterisk's clock, never the shifted routing clock
        leg_ids = []
        for endpoint, who in targets:
            leg_id = f"{call.id}:{purpose}{len(call.legs) + 1}"
            self.leg_owner[leg_id] = call.id
            call.leg_names[leg_id] = who
            call.timeouts[leg_id] = timeout_s
            call.legs[leg_id] = Leg(leg_id, call.id, endpoint, purpose, now)
            leg_ids.append(leg_id)
        return leg_ids

    async def _start_legs(self, call: Call, leg_ids: Sequence[str]) -> None:
        """Create the legs' channels, with the bridge and the caller's ringing indication.

        All are requested together: nothing on this path waits for another
        (the leg joins the bridge on its own StasisStart, handled after this
        returns, on this call's worker).
        """
        call.state = "ringing"
        replay = call.bridge is None and call.playback is not None
        if replay and call.playback is not None:
            # A playing channel joins a bridge only when its playback ends, and
            # addChannel waits for that: a waiting caller's welcome and ringback
            # stop, and the ringback starts again once the caller is in.
            await self.ari.stop_playback(call.playback)
            call.playback = None
        steps: list[Awaitable[object]] = [
            self.ari.create_channel(
                call.legs[leg_id].endpoint, f"leg,{call.id}", leg_id, call.id, ARI_TRANSFERS
            )
            for leg_id in leg_ids
        ]
        if call.bridge is None:
            call.bridge = f"{call.id}:bridge"
            steps.append(self._open_bridge(call.bridge, call.id))
        # The dialplan's Ringing() already told an unanswered caller it rings.
        await asyncio.gather(*steps)
        if replay:
            await self._play(call, [RINGBACK])

    async def _open_bridge(self, bridge: str, caller: str) -> None:
        await self.ari.create_bridge(bridge)
        await self.ari.add_to_bridge(bridge, [caller])

    async def _leg_started(self, event: StasisStart) -> None:
        leg_id = event.channel.id
        call = self.calls.get(self.leg_owner.get(leg_id, ""))
        if call is None or call.bridge is None:
            await self.ari.hangup(leg_id)
            return
        # The leg joins the bridge on its own StasisStart: before it, ARI may
        # answer 422 "not in Stasis" (asterisk-notes.md).
        timeout_s = call.timeouts.get(leg_id, self.settings.ring.timeout_s)
        await asyncio.gather(
            self.ari.add_to_bridge(call.bridge, [leg_id]),
            self.ari.dial(leg_id, caller=call.id, timeout_s=timeout_s),
        )

    async def _dial(self, call: Call, event: Dial) -> None:
        leg = before = call.legs[event.peer.id]
        record = call.record
        when = self._when(event)
        if event.dialstatus == "RINGING" and leg.ring_started_at is None:
            leg = replace(leg, ring_started_at=when, status="RINGING")
            if call.record.ring_started_at is None:
                call.record = replace(call.record, ring_started_at=when)
        elif event.dialstatus == "ANSWER":
            leg = replace(leg, answered_at=when, status="ANSWER")
            if call.connected_leg is None:
                await self._connect(call, leg.id, when)
            else:
                leg = replace(leg, status="LOST_RACE")  # another phone answered first
                await self.ari.hangup(leg.id)
        elif event.dialstatus in FAILED_LEG:
            leg = replace(leg, status=event.dialstatus)
        call.legs[leg.id] = leg
        # A Dial event that changes nothing (the dial's start) writes nothing.
        if leg != before:
            self.recorder.save_leg(leg)
        if call.record is not record:
            self._save(call)
        if event.dialstatus in FAILED_LEG:
            self._release_leg(call, leg.id, when, event.dialstatus)
            await self._leg_failed(call)
            self._dispatch()

    async def _connect(self, call: Call, leg_id: str, when: datetime) -> None:
        call.connected_leg = leg_id
        call.state = "connected"
        self._cancel_overflow(call)
        who = call.leg_names[leg_id]
        call.transferring = False
        if call.record.answered_at is not None:
            # A transfer's target answered: the first answer stays the measure (A1).
            call.record = call.record.note(f"[A5] {who} answered the transfer")
        elif call.success is Outcome.ANSWERED:
            ring = self.settings.ring
            call.record = call.record.answered(when, who, ring.cycle_ms, ring.goal_rings)
            call.record = call.record.note(f"[A1] answered by {who}")
        else:
            # A person answered, but not at the switchboard: no ring count (A1).
            call.record = replace(
                call.record, outcome=call.success, answered_at=when, answered_by=who
            ).note(f"[A1] answered by {who}")
        if call.playback is not None:
            await self.ari.stop_playback(call.playback)
            call.playback = None
        if not call.answered:
            try:
                await self.ari.answer(call.id)
            except AriHttpError as exc:
                # Under load the caller can be up already (or leaving) when our
                # answer arrives: only a caller still unanswered is a failure.
                state = await self.ari.channel_state(call.id)
                if state not in (None, "Up"):
                    raise
                log.info("call %s: answer as %s answered: %s (caller %s)", call.id, who, exc, state)
                if state is None:
                    return  # gone: its StasisEnd ends the call
            call.answered = True
        for other in call.legs:
            if other != leg_id and call.legs[other].ended_at is None:
                await self.ari.hangup(other)

    async def _leg_failed(self, call: Call) -> None:
        # Only a call waiting on its legs moves on. In the referral menu or in
        # voicemail the caller is with us: a leg ending then (the operator who
        # transferred the caller to a referred person hanging up) changes nothing.
        if call.connected_leg is not None or call.state in CALLER_WITH_US:
            return
        alive = [
            leg
            for leg in call.legs.values()
            if leg.status not in FAILED_LEG and leg.ended_at is None
        ]
        if alive:
            return
        if call.person in self.referrals.staff:
            # The person (or the colleague) did not answer: the menu, without a referral (R5).
            last = list(call.legs.values())[-1]
            call.transferring = False
            if last.purpose == "col":
                call.record = call.record.note("[R5] the colleague did not answer: the menu")
                await self._menu(call, ["no-colleague"])
            else:
                call.record = call.record.note(f"[R5] {call.person} did not answer: the menu")
                await self._menu(call, [f"name-{call.person}", "not-answering"])
            return
        if call.transferring:
            call.transferring = False
            call.record = call.record.note(
                "[A6] the transfer was not answered: back to the switchboard"
            )
            self._save(call)
            self._queue(call)
            if call.id in self.waiting:
                await self._hold(call)
            return
        if call.action is Action.OPERATOR_QUEUE and not call.overflowed:
            # No operator took it (no answer, busy, offline): back in line, in
            # its place by arrival, until one does or it overflows (A4, A6).
            call.record = call.record.note("[A4] no operator answered the offer: back in line")
            self._save(call)
            self._queue(call)
            if call.id in self.waiting:
                await self._hold(call)
            return
        # Nobody can take it: the dialplan fallback tries the operators once more
        # and otherwise tells the caller, rather than leaving silence.
        call.record = call.record.note("[A6] no phone answered: dialplan fallback")
        await self._to_fallback(call.id, Outcome.NO_ANSWER)

    async def _leg_gone(self, call: Call, leg_id: str, when: datetime) -> None:
        leg = call.legs[leg_id]
        if leg.ended_at is None:
            # A leg that ends while still ringing was cancelled (another phone won, or the call moved on).
            status = "CANCEL" if leg.status in ("", "RINGING") else leg.status
            call.legs[leg_id] = leg = replace(leg, ended_at=when, status=status)
            self.recorder.save_leg(leg)
        self.leg_owner.pop(leg_id, None)
        self._release_leg(call, leg_id, when)
        try:
            if leg_id == call.connected_leg:
                self._finish(call, when, None, "the answering phone hung up")
                await self.ari.hangup(call.id)
            else:
                await self._leg_failed(call)
        finally:
            self._dispatch()

    # ----- voicemail the ledger lacks (V1, V2) ----------------------------------------------

    async def recover_messages(
        self, lookup: Callable[[str], Awaitable[CallRecord | None]]
    ) -> list[Message]:
        """Put into the ledger every finished voicemail recording in Asterisk's spool
        that is not there: the controller died while it was recorded, or the
        database failed when it ended. Caller and time come from the call log
        (``lookup``; a recording whose call is not in it is not this database's
        and is left alone); the length from the WAV file. Calls still in
        progress are left to their own flow. Returns the messages added; raises nothing
        (failures are logged and the next round tries again)."""
        try:
            names = await self.ari.stored_recordings()
        except Exception as exc:
            log.warning("voicemail recovery: cannot list the recordings: %s", exc)
            return []
        candidates = {}
        for name in sorted(names):
            found = VOICEMAIL_NAME.match(name)
            if found is not None and found[2] not in self.calls:
                candidates[found[2]] = (name, found[1])
        try:
            known = await self.referrals.known_messages(list(candidates))
        except Exception as exc:
            log.warning("voicemail recovery: cannot read the ledger: %s", exc)
            return []
        added = []
        for call_id, (name, extension) in candidates.items():
            if call_id in known:
                continue
            try:
                record = await lookup(call_id)
                if record is None:
                    # Not a call of this database (an older one, a test's): not ours to add.
                    continue
                caller, left_at = record.caller, record.ended_at or record.arrived_at
                audio = await self.ari.stored_recording_file(name)
                message = await self.referrals.message_left(
                    extension, caller, call_id, left_at, _wav_seconds(audio), name
                )
            except Exception as exc:
                log.warning("voicemail recovery: %s not in the ledger yet: %s", name, exc)
                continue
            # The call is over (no call in progress has its message recovered).
            note = f"[V2] message {name} recovered from Asterisk's spool into the ledger"
            self.recorder.save(record.note(note).ended(_real_now(), Outcome.VOICEMAIL))
            log.warning(
                "voicemail recovery: %s for %s from %s added to the ledger, call back by %s",
                name,
                extension,
                caller,
                message.deadline_at.astimezone(self.calendar.tz).isoformat(),
            )
            added.append(message)
        return added

    def close_orphans(self, live: Iterable[str], records: Iterable[CallRecord]) -> int:
        """End the log rows of calls that ended while no controller followed them (it was
        down, or the call was handed to the dialplan fallback): every open row whose
        channel is gone and which this process does not handle. Their end time is
        unknown; the time they are found is logged instead, said so in the trace.
        Returns how many were closed."""
        alive = set(live)
        now, closed = _real_now(), 0
        for record in records:
            if record.ended_at is not None or record.id in alive:
                continue
            if record.id in self.calls or record.id in self.finished:
                continue
            note = "[resync] ended while no controller followed it; ended_at is when that was seen"
            self.recorder.save(record.note(note).ended(now))
            closed += 1
        cutoff = time.monotonic() - FINISHED_KEEP_S
        self.finished = {cid: at for cid, at in self.finished.items() if at > cutoff}
        if closed:
            log.info("resync: %d call(s) ended while no controller followed them", closed)
        return closed

    # ----- resync after a reconnect ---------------------------------------------------------

    async def resync(
        self,
        channels: Iterable[Channel],
        app: str,
        lookup: Callable[[str], Awaitable[CallRecord | None]] | None = None,
    ) -> None:
        """Take over or safely end channels left in our Stasis app while no controller ran.

        A caller this process does not know is sent to the dialplan fallback,
        which routes it by the same hours; a leg of an unknown call is hung up.
        With ``lookup`` (the call log), the caller's row records the hand-over,
        so the log says what became of every call.
        """
        for channel in channels:
            dialplan = channel.raw.get("dialplan") or {}
            data = str(dialplan.get("app_data", ""))
            if dialplan.get("app_name") != "Stasis" or not data.startswith(f"{app},"):
                continue
            if channel.id in self.calls or channel.id in self.leg_owner:
                continue
            args = data.split(",")[1:]
            if args[:1] == ["leg"]:
                log.warning("resync: hanging up leg %s of an unknown call", channel.id)
                await _quietly(self.ari.hangup(channel.id))
            elif args[:1] == ["internal"] and len(args) > 1:
                log.warning(
                    "resync: internal call %s to %s goes to the fallback", channel.id, args[1]
                )
                await self._stop_orphan_playbacks(channel.id)
                await _quietly(
                    self.ari.continue_in_dialplan(channel.id, FALLBACK_INTERNAL, args[1])
                )
            else:
                log.warning("resync: call %s goes to the fallback", channel.id)
                await self._stop_orphan_playbacks(channel.id)
                await _quietly(self.ari.continue_in_dialplan(channel.id, FALLBACK_INBOUND))
            if args[:1] != ["leg"] and lookup is not None:
                record = await lookup(channel.id)
                if record is not None and record.ended_at is None:
                    note = "[resync] the controller restarted: handed to the dialplan fallback"
                    self.recorder.save(replace(record, outcome=Outcome.FALLBACK).note(note))

    async def _stop_orphan_playbacks(self, channel_id: str) -> None:
        # A playing channel leaves Stasis only when its playback ends. Playback
        # ids are ``<call id>:pb<n>``, so a new process can stop what an old
        # one started (a call plays at most a few); unknown ids answer 404.
        for n in range(1, 5):
            await _quietly(self.ari.stop_playback(f"{channel_id}:pb{n}"))

    # ----- ending -------------------------------------------------------------------------------

    async def _caller_gone(self, call: Call, when: datetime) -> None:
        if call.state == "recording":
            # Hanging up is how most callers end a message; the recording is kept.
            await self._recorded(call, None, when)
        # Hanging up on the answering machine is its normal end, not an abandoned call.
        heard_message = call.action is Action.ANSWERING_MACHINE and call.connected_leg is None
        outcome = (
            Outcome.CLOSED if heard_message and call.record.outcome is Outcome.IN_PROGRESS else None
        )
        if call.state in ("menu", "bye", "voicemail-prompt") and call.connected_leg is None:
            outcome = Outcome.REFERRED  # heard the person's referral or menu, then left (R5)
        if call.action is Action.FEATURE_CODE:
            # Staff hang up during the read-back or their mailbox: the code was
            # carried out (or refused) all the same, and no caller was lost.
            outcome = Outcome.FEATURE_CODE
        self._finish(call, when, outcome, "the caller hung up")
        self._release_call(call, when)
        live = [leg for leg in call.legs.values() if leg.ended_at is None]
        for leg in live:
            # The legs end with the caller; their own StasisEnd finds no call.
            status = "CANCEL" if leg.status in ("", "RINGING") else leg.status
            call.legs[leg.id] = ended = replace(leg, ended_at=when, status=status)
            self.recorder.save_leg(ended)
        # Forget the call before any await: its legs' later events find nothing.
        self.calls.pop(call.id, None)
        self.finished[call.id] = time.monotonic()
        for leg_id in call.legs:
            self.leg_owner.pop(leg_id, None)
        for leg in live:
            await self.ari.hangup(leg.id)
        if call.bridge is not None:
            await self.ari.destroy_bridge(call.bridge)

    def _finish(self, call: Call, when: datetime, outcome: Outcome | None, why: str) -> None:
        if call.record.ended_at is None:
            call.record = call.record.note(f"[end] {why}").ended(when, outcome)
        call.state = "done"
        self._cancel_overflow(call)
        self._save(call)

    def _cancel_overflow(self, call: Call) -> None:
        if call.overflow_timer is not None:
            call.overflow_timer.cancel()
            call.overflow_timer = None

    def _save(self, call: Call) -> None:
        self.recorder.save(call.record)

    async def _to_fallback(self, call_id: str, outcome: Outcome = Outcome.FALLBACK) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            if call.playback is not None:
                # A playing channel leaves Stasis only when its playback ends; the
                # ring tone never does.
                await _quietly(self.ari.stop_playback(call.playback))
                call.playback = None
            for leg_id, leg in call.legs.items():
                if leg.ended_at is None and leg_id != call.connected_leg:
                    await _quietly(self.ari.hangup(leg_id))
            if call.record.ended_at is None:
                call.record = replace(call.record, outcome=outcome).note(
                    "[fallback] sent to the dialplan"
                )
                self._save(call)
            call.state = "done"
            self._cancel_overflow(call)
            self._release_call(call, _real_now())
        context = FALLBACK_INBOUND
        if (
            call is not None
            and call.record.direction == "internal"
            and call.action is Action.EXTENSION
        ):
            context = FALLBACK_INTERNAL
        extension = call.record.called if context == FALLBACK_INTERNAL and call is not None else "s"
        await _quietly(self.ari.continue_in_dialplan(call_id, context, extension))


def _wav_seconds(audio: bytes) -> float:
    """A WAV file's length in seconds; 0.0 for one that is empty or not WAV."""
    try:
        with wave.open(io.BytesIO(audio)) as reader:
            frames: int = reader.getnframes()
            rate: int = reader.getframerate()
            return frames / rate
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0


def _real_now() -> datetime:
    """The real time (UTC) for the call log, where no Asterisk event gives one.

    Never the shifted routing clock: log times are Asterisk's, so mixing would
    break durations and the longest-idle order.
    """
    return datetime.now(UTC)


async def _quietly(awaitable: object) -> None:
    try:
        await awaitable  # type: ignore[misc]
    except Exception as exc:
        log.warning("cleanup step failed: %s", exc)
