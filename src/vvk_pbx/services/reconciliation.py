"""After a (re)connect and every minute: what no controller followed is made right.

``resync`` (before the new connection's events) ends the calls whose channels
vanished while the events socket was down; adopts the calls an earlier process
connected to a person, which go on as they were (issue 13); hands the other
callers left in our app to the dialplan fallback and hangs up their legs; and
destroys the bridges of ours that no call uses any more. It reads only ARI, but
for the adopted calls' rows, read with a timeout of their own (``ADOPT_READ_S``):
the reconnect must never wait long for, or fail with, the database. ``follow_up`` (the database,
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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from vvk_pbx.ari.models import Bridge, Channel, ChannelDestroyed, Dial, Event
from vvk_pbx.domain.callflow.call import FALLBACK_FEATURE, FALLBACK_INBOUND, FALLBACK_INTERNAL
from vvk_pbx.domain.callflow.events import CallerGone, LegGone
from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.voicemail import Message
from vvk_pbx.services.calls.controller import CallController, endpoint_of, stasis_args
from vvk_pbx.services.calls.executor import quietly
from vvk_pbx.services.calls.registry import playback_ids
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService
from vvk_pbx.storage.cdr import CdrFile, CdrLine

log = logging.getLogger(__name__)

# A voicemail recording's name: vm-<extension>-<call id> (the call id is the
# caller's channel id, which is also the message's id in the ledger).
VOICEMAIL_NAME = re.compile(r"^vm-([0-9]{2,6})-(.+)$")
# How long a follow-up waits for the call log's pending writes before it gives
# up this round (seconds): a database that is down is tried again next round.
FLUSH_S = 10
# How long an adopted call waits for its call-log row at a restart (seconds); then
# it goes on with a row made from its channel.
ADOPT_READ_S = 1.0
# CDR lines older than this are not read into the call log (see import_fallback_calls).
CDR_MAX_AGE = timedelta(days=7)
# Our bridges' ids: the caller's and the consultation's (services/calls/executor.py).
BRIDGE_SUFFIXES = (":bridge", ":consult")


class SpoolPort(Protocol):
    """What reconciliation needs of ARI (``AriClient``)."""

    async def list_channels(self) -> list[Channel]: ...
    async def list_bridges(self) -> list[Bridge]: ...
    async def add_to_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None: ...
    async def remove_from_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str = "s", priority: int = 1
    ) -> None: ...
    async def subscribe(self, sources: Iterable[str]) -> None: ...
    async def stored_recordings(self) -> list[str]: ...
    async def stored_recording_file(self, name: str) -> bytes: ...


class CallLogPort(Protocol):
    """What it needs of the call log (``storage.calllog.CallLog``)."""

    async def get_call(self, call_id: str) -> CallRecord | None: ...
    async def open_calls(self) -> list[CallRecord]: ...
    async def legs_by_call(self, call_ids: list[str]) -> dict[str, list[Leg]]: ...


@dataclass
class Followed:
    """A caller handed to the dialplan fallback, followed to its real end: its row (None
    until the follow-up has read it) and what Asterisk told of it meanwhile."""

    record: CallRecord | None = None
    answered: tuple[datetime, str] | None = None  # when, and by whom
    ended: datetime | None = None


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
        cdr: CdrFile | None = None,
    ) -> None:
        self.ari = ari
        self.cdr = cdr  # Asterisk's CDR file: the calls only the fallback handled
        self.app = app
        self.controller = controller
        self.store = store
        self.recorder = recorder
        self.referrals = referrals
        self.clock = clock
        self.handed_over: list[Channel] = []  # callers given to the fallback, for follow_up
        # The fallback's callers by channel id, until their channel is destroyed: the
        # app stays subscribed to them, so their answer and end come as events.
        self.followed: dict[str, Followed] = {}
        controller.on_unfollowed = self.fallback_event

    # ----- resync: ARI only -------------------------------------------------------------

    async def resync(self) -> list[Channel]:
        """After a (re)connect: reap, adopt, take over, clear (see the module). Returns the
        channels Asterisk has. Raises ``AriError`` when ARI does not answer."""
        channels = await self.ari.list_channels()
        bridges = await self.ari.list_bridges()
        self.reap({c.id for c in channels})
        await self.adopt(channels, bridges)
        await self.take_over(channels)
        await self.clear_bridges(bridges)
        return channels

    async def adopt(self, channels: Iterable[Channel], bridges: Iterable[Bridge]) -> int:
        """Calls of ours that this process does not know, whose caller talks with a leg in
        the call's bridge: they go on, connected (``CallController.adopt``). A caller
        held during a consultation (koppla med förfrågan) gets the operator back, as
        *ta tillbaka* does: the person asked is hung up. Returns how many."""
        by_id = {c.id: c for c in channels}
        listed = {b.id: b for b in bridges}
        adopted = 0
        for bridge in listed.values():
            call_id = bridge.id.removesuffix(":bridge")
            caller = by_id.get(call_id)
            if call_id == bridge.id or caller is None or call_id not in bridge.channels:
                continue
            args = stasis_args(caller, self.app)
            if args is None or args[:1] == ["leg"] or caller.state != "Up":
                continue
            if self.controller.registry.line(call_id) is not None:
                continue
            talking = self._talking(call_id, bridge.channels, by_id)
            consult = listed.get(f"{call_id}:consult")
            if not talking and consult is not None:
                talking = self._talking(call_id, consult.channels, by_id, besides="cons")[:1]
                if talking:
                    await self.ari.remove_from_bridge(consult.id, [talking[0].id])
                    await self.ari.add_to_bridge(bridge.id, [talking[0].id])
            if not talking:
                continue
            record, legs = await self._logged(call_id)
            self.controller.adopt(caller, talking[0], bridge.id, record, legs)
            adopted += 1
        return adopted

    def _talking(
        self, call_id: str, members: Iterable[str], by_id: dict[str, Channel], besides: str = ""
    ) -> list[Channel]:
        """The call's answered legs among ``members`` (``<call>:<purpose><n>``), but
        those whose purpose is ``besides``."""
        found = []
        for member in members:
            channel = by_id.get(member)
            if channel is None or channel.state != "Up" or not member.startswith(f"{call_id}:"):
                continue
            if besides and member.removeprefix(f"{call_id}:").startswith(besides):
                continue
            found.append(channel)
        return found

    async def _logged(self, call_id: str) -> tuple[CallRecord | None, list[Leg]]:
        """The call's row and legs in the call log, or (None, []) after ``ADOPT_READ_S``
        or an error: a call is adopted with or without them."""
        try:
            async with asyncio.timeout(ADOPT_READ_S):
                record = await self.store.get_call(call_id)
                legs = (await self.store.legs_by_call([call_id])).get(call_id, [])
        except Exception as exc:  # a database that is down or slow: the channel's facts
            log.warning("resync: the call log of %s not read (%s); adopted without", call_id, exc)
            return None, []
        return record, legs

    async def clear_bridges(self, bridges: Iterable[Bridge]) -> int:
        """Destroy the bridges of ours (``<call>:bridge``, ``<call>:consult``) that no call
        of this process uses: an earlier process left them, killed before it could.
        Returns how many."""
        used: set[str] = set()
        for line in self.controller.registry:
            used.update(b for b in (line.bridge, line.consult_bridge) if b is not None)
        stale = [b.id for b in bridges if b.id.endswith(BRIDGE_SUFFIXES) and b.id not in used]
        await quietly(*(self.ari.destroy_bridge(bridge) for bridge in stale))
        if stale:
            log.info("resync: %d bridge(s) left by an earlier process destroyed", len(stale))
        return len(stale)

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
            args = stasis_args(channel, self.app)
            if args is None or registry.line_of(channel.id) is not None:
                continue
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
            # Out of Stasis, its events still come: who answers it and when it ends.
            await quietly(self.ari.subscribe([f"channel:{channel.id}"]))
            self.followed[channel.id] = Followed()
            self.handed_over.append(channel)

    def fallback_event(self, item: Event) -> None:
        """An event of no call of ours: a followed caller's answer (the fallback's Dial)
        or end (its ChannelDestroyed), into its row."""
        at = item.timestamp or self.clock.real()
        if isinstance(item, Dial) and item.dialstatus == "ANSWER" and item.caller is not None:
            followed = self.followed.get(item.caller.id)
            if followed is not None and followed.answered is None:
                followed.answered = (at, endpoint_of(item.peer.name))
                self._settle(item.caller.id)
        elif isinstance(item, ChannelDestroyed) and item.channel.id in self.followed:
            self.followed[item.channel.id].ended = at
            self._settle(item.channel.id)

    def _settle(self, call_id: str) -> None:
        """Save what is known of a followed caller once its row is read; forget it at its end."""
        followed = self.followed[call_id]
        record = followed.record
        if record is None:
            return  # the follow-up reads the row, then settles
        policy = self.controller.policy
        if followed.answered is not None and record.answered_at is None:
            at, by = followed.answered
            record = record.answered(at, by, policy.cycle_ms, policy.goal_rings).note(
                f"[fallback] answered by {by}"
            )
        if followed.ended is not None:
            record = record.note("[fallback] the call ended").ended(followed.ended)
            del self.followed[call_id]
        else:
            followed.record = record
        self.recorder.save(record)

    # ----- follow-up: the database, in the background -----------------------------------

    async def follow_up(self, channels: list[Channel] | None = None) -> None:
        """Hand-overs into the call log, ended calls' rows, missing voicemail. Never raises:
        each part logs its failure and the next round tries again."""
        handed, self.handed_over = self.handed_over, []
        try:
            for channel in handed:
                # No row: the earlier process was killed before its writer flushed it.
                record = await self.store.get_call(channel.id) or self.controller.lost_record(
                    channel
                )
                if record.ended_at is None:
                    note = "[resync] the controller restarted: handed to the dialplan fallback"
                    record = replace(record, outcome=Outcome.FALLBACK).note(note)
                    self.recorder.save(record)
                if channel.id in self.followed:
                    self.followed[channel.id].record = record
                    self._settle(channel.id)
            # The hand-overs first: the orphans' check reads the rows back.
            await asyncio.wait_for(self.recorder.flush(), FLUSH_S)
            live = channels if channels is not None else await self.ari.list_channels()
            alive = {c.id for c in live} | {c.id for c in handed} | set(self.followed)
            self.close_orphans(alive, await self.store.open_calls())
        except Exception as exc:  # a database or ARI that fails: the next round
            self.handed_over[:0] = [c for c in handed if c not in self.handed_over]
            log.warning("follow-up of ended calls failed: %s", exc)
        try:
            await self.import_fallback_calls()
        except Exception as exc:  # the lines are read again next round
            log.warning("the fallback's calls from the CDR not logged yet: %s", exc)
        await self.recover_messages()

    async def import_fallback_calls(self) -> int:
        """Calls that the dialplan fallback handled while no controller ran (they never
        reached one), from Asterisk's CDR: one row each, marked as the fallback's, with
        Asterisk's times and who answered. A call the log has (a controller had it) is
        left alone, so none is logged twice. Returns how many rows were made; raises
        ``StorageError`` (the lines are read again next round)."""
        if self.cdr is None:
            return 0
        lines, offset = await asyncio.to_thread(self.cdr.read_new)
        calls: dict[str, list[CdrLine]] = {}
        # Lines this old were read before (a file rotated, a new database): their
        # rows may be gone by retention, and must not come back.
        oldest = self.clock.real() - CDR_MAX_AGE
        for line in lines:
            if line.fallback and line.start >= oldest:
                calls.setdefault(line.call_id, []).append(line)
        made = 0
        policy = self.controller.policy
        for call_id, parts in calls.items():
            if await self.store.get_call(call_id) is not None:
                continue
            first = min(parts, key=lambda p: p.start)
            record = self.controller.fallback_record(
                call_id, first.fallback, first.caller, first.dialed, first.start, first.name
            )
            answered = [
                p for p in parts if p.answer is not None and p.party and p.disposition == "ANSWERED"
            ]
            if answered:
                by = min(answered, key=lambda p: p.answer or p.end)
                assert by.answer is not None
                who = endpoint_of(by.party)
                record = record.answered(by.answer, who, policy.cycle_ms, policy.goal_rings)
                record = record.note(f"[fallback] answered by {who}")
            end = max(p.end for p in parts)
            record = record.note("[fallback] the call ended").ended(end, Outcome.FALLBACK)
            self.recorder.save(record)
            made += 1
        if made:  # the offset moves once the rows are written, not before
            await asyncio.wait_for(self.recorder.flush(), FLUSH_S)
        self.cdr.commit(offset)
        if made:
            log.info(
                "%d call(s) the fallback handled while no controller ran logged from the CDR", made
            )
        return made

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
