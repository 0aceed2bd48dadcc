"""After a (re)connect and every minute: what no controller followed is made right.

``resync`` (ARI only, before the new connection's events: the reconnect must
not depend on the database) ends the calls whose channels vanished while the
events socket was down, hands callers left in our app by another process to
the dialplan fallback, and hangs up their legs. ``follow_up`` (the database,
in the background) writes those hand-overs into the call log, ends the rows
of calls that ended while no controller followed them, and puts into the
ledger the voicemail Asterisk's spool has and the ledger lacks (V2: no
message may be lost).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import wave
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from vvk_pbx.ari.models import Channel
from vvk_pbx.domain.callflow.call import FALLBACK_FEATURE, FALLBACK_INBOUND, FALLBACK_INTERNAL
from vvk_pbx.domain.callflow.events import CallerGone, LegGone
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.domain.voicemail import Message
from vvk_pbx.services.calls.controller import CallController
from vvk_pbx.services.calls.executor import quietly
from vvk_pbx.services.calls.registry import playback_ids
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService

log = logging.getLogger(__name__)

# A voicemail recording's name: vm-<extension>-<call id> (the call id is the
# caller's channel id, which is also the message's id in the ledger).
VOICEMAIL_NAME = re.compile(r"^vm-([0-9]{2,6})-(.+)$")
# How long a follow-up waits for the call log's pending writes before it gives
# up this round (seconds): a database that is down is tried again next round.
FLUSH_S = 10


class SpoolPort(Protocol):
    """What reconciliation needs of ARI (``AriClient``)."""

    async def list_channels(self) -> list[Channel]: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str = "s", priority: int = 1
    ) -> None: ...
    async def stored_recordings(self) -> list[str]: ...
    async def stored_recording_file(self, name: str) -> bytes: ...


class CallLogPort(Protocol):
    """What it needs of the call log (``storage.calllog.CallLog``)."""

    async def get_call(self, call_id: str) -> CallRecord | None: ...
    async def open_calls(self) -> list[CallRecord]: ...


class Reconciliation:
    """Resync after a reconnect and the follow-up rounds."""

    def __init__(
        self,
        ari: SpoolPort,
        app: str,
        controller: CallController,
        store: CallLogPort,
        recorder: Recorder,
        referrals: ReferralService,
        clock: Clock,
    ) -> None:
        self.ari = ari
        self.app = app
        self.controller = controller
        self.store = store
        self.recorder = recorder
        self.referrals = referrals
        self.clock = clock
        self.handed_over: list[str] = []  # callers given to the fallback, for follow_up

    # ----- resync: ARI only -------------------------------------------------------------

    async def resync(self) -> list[Channel]:
        """After a (re)connect: reap and take over (see the module). Returns the channels
        Asterisk has. Raises ``AriError`` when ARI does not answer."""
        channels = await self.ari.list_channels()
        live = {c.id for c in channels}
        self.reap(live)
        await self.take_over(channels)
        return channels

    def reap(self, live: set[str]) -> int:
        """Calls and legs this process follows whose channels are gone: their StasisEnd or
        ChannelDestroyed was lost with the socket. Each call gets the event it missed,
        behind its own, so its operators are offered calls again (A4). Returns how many."""
        now, reaped = self.clock.real(), 0
        for line in self.controller.registry:
            if line.id not in live:
                self.controller.post(line.id, CallerGone(now))
                reaped += 1
                continue
            for leg_id in line.live_legs():
                if leg_id not in live:
                    self.controller.post(line.id, LegGone(leg_id, now))
                    reaped += 1
        if reaped:
            log.warning(
                "resync: %d call(s) or leg(s) ended while the events socket was down", reaped
            )
        return reaped

    async def take_over(self, channels: Iterable[Channel]) -> None:
        """Channels in our Stasis app that this process does not know (another process
        ran them): a caller goes to the dialplan fallback, which routes it by the same
        hours; a leg is hung up."""
        registry = self.controller.registry
        for channel in channels:
            dialplan = channel.raw.get("dialplan") or {}
            data = str(dialplan.get("app_data", ""))
            if dialplan.get("app_name") != "Stasis" or not data.startswith(f"{self.app},"):
                continue
            if registry.line_of(channel.id) is not None:
                continue
            args = data.split(",")[1:]
            if args[:1] == ["leg"]:
                log.warning("resync: hanging up leg %s of an unknown call", channel.id)
                await quietly(self.ari.hangup(channel.id))
                continue
            context, extension = FALLBACK_INBOUND, "s"
            if args[:1] == ["internal"] and len(args) > 1:
                context, extension = FALLBACK_INTERNAL, args[1]
            elif args[:1] == ["feature"]:
                context = FALLBACK_FEATURE
            log.warning("resync: call %s goes to %s,%s", channel.id, context, extension)
            # A playing channel leaves Stasis only when its playback ends: stop
            # whatever the old process played (every id a call's playbacks use).
            await quietly(*(self.ari.stop_playback(p) for p in playback_ids(channel.id)))
            await quietly(self.ari.continue_in_dialplan(channel.id, context, extension))
            self.handed_over.append(channel.id)

    # ----- follow-up: the database, in the background -----------------------------------

    async def follow_up(self, channels: list[Channel] | None = None) -> None:
        """Hand-overs into the call log, ended calls' rows, missing voicemail. Never raises:
        each part logs its failure and the next round tries again."""
        handed, self.handed_over = self.handed_over, []
        try:
            for call_id in handed:
                record = await self.store.get_call(call_id)
                if record is not None and record.ended_at is None:
                    note = "[resync] the controller restarted: handed to the dialplan fallback"
                    self.recorder.save(replace(record, outcome=Outcome.FALLBACK).note(note))
            # The hand-overs first: the orphans' check reads the rows back.
            await asyncio.wait_for(self.recorder.flush(), FLUSH_S)
            live = channels if channels is not None else await self.ari.list_channels()
            self.close_orphans({c.id for c in live} | set(handed), await self.store.open_calls())
        except Exception as exc:  # a database or ARI that fails: the next round
            self.handed_over[:0] = [c for c in handed if c not in self.handed_over]
            log.warning("follow-up of ended calls failed: %s", exc)
        await self.recover_messages()

    def close_orphans(self, live: Iterable[str], records: Iterable[CallRecord]) -> int:
        """End the log rows of calls that ended while no controller followed them (it was
        down, or the call was handed to the dialplan fallback): every open row whose
        channel is gone and which this process neither handles nor ended lately. Their
        end is unknown: the time they are found is logged, said so in the trace.
        Returns how many were closed."""
        alive = set(live)
        registry = self.controller.registry
        now, closed = self.clock.real(), 0
        for record in records:
            if record.ended_at is not None or record.id in alive:
                continue
            if registry.line(record.id) is not None or record.id in registry.finished:
                continue
            note = "[resync] ended while no controller followed it; ended_at is when that was seen"
            self.recorder.save(record.note(note).ended(now))
            closed += 1
        if closed:
            log.info("resync: %d call(s) ended while no controller followed them", closed)
        return closed

    async def recover_messages(self) -> list[Message]:
        """Put into the ledger every finished voicemail recording in Asterisk's spool that
        is not there: the controller died while it was recorded, or the database failed
        when it ended. Caller and time come from the call log (a recording whose call
        is not in it is not this database's and is left alone); the length from the WAV
        file. Calls still in progress are left to their own flow. Returns the messages
        added; raises nothing (failures are logged and the next round tries again)."""
        registry = self.controller.registry
        try:
            names = await self.ari.stored_recordings()
        except Exception as exc:
            log.warning("voicemail recovery: cannot list the recordings: %s", exc)
            return []
        candidates = {}
        for name in sorted(names):
            found = VOICEMAIL_NAME.match(name)
            if found is not None and registry.line(found[2]) is None:
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
                record = await self.store.get_call(call_id)
                if record is None:
                    continue  # not a call of this database (an older one, a test's)
                # The deadline counts on the controller's clock: the call's log
                # times are Asterisk's, so the shift is added back.
                left_at = (record.ended_at or record.arrived_at) + (
                    self.clock.now() - self.clock.real()
                )
                audio = await self.ari.stored_recording_file(name)
                message = await self.referrals.message_left(
                    extension, record.caller, call_id, left_at, wav_seconds(audio), name
                )
            except Exception as exc:
                log.warning("voicemail recovery: %s not in the ledger yet: %s", name, exc)
                continue
            note = f"[V2] message {name} recovered from Asterisk's spool into the ledger"
            self.recorder.save(record.note(note).ended(self.clock.real(), Outcome.VOICEMAIL))
            log.warning(
                "voicemail recovery: %s for %s from %s added to the ledger, call back by %s",
                name,
                extension,
                record.caller,
                message.deadline_at.astimezone(self.referrals.calendar.tz).isoformat(),
            )
            added.append(message)
        return added


def wav_seconds(audio: bytes) -> float:
    """A WAV file's length in seconds; 0.0 for one that is empty or not WAV."""
    try:
        with wave.open(io.BytesIO(audio)) as reader:
            frames: int = reader.getnframes()
            rate: int = reader.getframerate()
            return frames / rate
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0
