"""The call controller against the fake ARI server: what it asks Asterisk to do, and what it logs.

The flows' own tables are in ``tests/unit/test_callflow_*.py``; here the whole
service runs: translation, decisions, the executor, the operator queue, the
recorder, on a clock and timers the tests move.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.component.fake_ari import FakeAri
from tests.conftest import STHLM
from tests.fakes import (
    FakeClock,
    FakeTimers,
    MemoryAccess,
    MemoryAudit,
    MemoryMessages,
    MemoryPins,
    MemoryReferrals,
    MemoryStore,
)
from vvk_pbx.ari.client import AriClient, AriConfig, OrderedDispatcher
from vvk_pbx.ari.models import Channel, parse_event
from vvk_pbx.config import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.callflow.call import Call
from vvk_pbx.domain.callflow.states import Connected, Menu
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.domain.referral import Source
from vvk_pbx.domain.routing import CallKind, Route, route
from vvk_pbx.domain.voicemail import Status
from vvk_pbx.http.api import Services
from vvk_pbx.services import calls, views
from vvk_pbx.services.access import AccessService
from vvk_pbx.services.calls.controller import CallController, Item
from vvk_pbx.services.export import ExportService
from vvk_pbx.services.live import LiveFeed
from vvk_pbx.services.metrics import Metrics
from vvk_pbx.services.operator_queue import OperatorQueue
from vvk_pbx.services.reconciliation import Reconciliation
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService

CLOSED = datetime(2026, 12, 25, 10, 0, tzinfo=STHLM)  # Christmas Day
OPEN = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)  # a Monday morning


@dataclass
class Rig:
    fake: FakeAri
    controller: CallController
    reconciliation: Reconciliation
    store: MemoryStore
    recorder: Recorder
    dispatcher: OrderedDispatcher[Item]
    referrals: MemoryReferrals
    messages: MemoryMessages
    pins: MemoryPins
    service: ReferralService
    clock: FakeClock
    timers: FakeTimers
    access: MemoryAccess = field(default_factory=MemoryAccess)
    audit: MemoryAudit = field(default_factory=MemoryAudit)
    _services: Services | None = None

    async def event(self, raw: dict[str, Any]) -> None:
        """Handle one event as the controller does, with the events it posts."""
        self.dispatcher.submit(parse_event(raw))
        await self.dispatcher.drain()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the controller's clock; timers due fire."""
        self.timers.advance(seconds)
        await self.dispatcher.drain()

    @property
    def queue(self) -> OperatorQueue:
        return self.controller.queue

    def call(self, cid: str) -> Call:
        line = self.controller.registry.line(cid)
        assert line is not None, f"no call {cid} in progress"
        return line.call

    def posts(self) -> list[tuple[str, dict[str, str]]]:
        return [(r.path, r.query) for r in self.fake.requests() if r.method in ("POST", "DELETE")]

    def services(self) -> Services:
        """The API's services over this rig, made once: every client shares the feed."""
        if self._services is None:
            access = AccessService(self.access, self.service, self.service.settings)
            feed = LiveFeed(self.controller, self.service, self.clock, call_log=self.store)
            self.controller.on_change = feed.changed
            self.service.on_change = feed.referrals_changed
            exports = ExportService(self.store, self.audit, self.service.settings)
            ring = self.service.settings.ring
            metrics = Metrics(ring.cycle_ms, ring.goal_rings)
            self.controller.on_ended = metrics.call_ended
            self._services = Services(
                self.controller,
                self.store,
                self.service,
                access,
                self.clock,
                feed,
                exports,
                metrics,
            )
        return self._services


def chan(cid: str, number: str = "0701234567", name: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "name": name or f"PJSIP/trunk-{cid}",
        "state": "Ring",
        "caller": {"number": number},
    }


def ts(at: datetime) -> str:
    return at.isoformat()


async def make_rig(settings: Settings, now: datetime) -> AsyncIterator[Rig]:
    fake = FakeAri()
    await fake.start()
    ari = AriClient(AriConfig(fake.base_url, fake.user, fake.password, "vvk-pbx"))
    store = MemoryStore()
    recorder = Recorder(store, retry_s=0.01)
    calendar = Calendar(settings.hours_policy())
    referrals, messages, pins = MemoryReferrals(), MemoryMessages(), MemoryPins()
    service = ReferralService(referrals, messages, pins, settings, calendar)
    clock = FakeClock(now)
    timers = FakeTimers(clock)
    controller = calls.wire(ari, settings, calendar, service, recorder, clock, timers)
    dispatcher: OrderedDispatcher[Item] = OrderedDispatcher(controller.handle, controller.key)
    controller.submit = dispatcher.submit
    reconciliation = Reconciliation(ari, "vvk-pbx", controller, store, recorder, service, clock)
    try:
        yield Rig(
            fake,
            controller,
            reconciliation,
            store,
            recorder,
            dispatcher,
            referrals,
            messages,
            pins,
            service,
            clock,
            timers,
        )
    finally:
        await ari.close()
        await fake.stop()


@pytest.fixture
async def closed(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for rig in make_rig(sample_settings, CLOSED):
        yield rig


@pytest.fixture
async def open_(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for rig in make_rig(sample_settings, OPEN):
        yield rig


def stasis(cid: str, at: datetime, *args: str, **chan_kw: Any) -> dict[str, Any]:
    return {
        "type": "StasisStart",
        "timestamp": ts(at),
        "args": list(args),
        "channel": chan(cid, **chan_kw),
    }


def destroyed(cid: str, at: datetime = OPEN, cause: int = 16) -> dict[str, Any]:
    """A channel's end as Asterisk tells it (Q.850 ``cause``: 16 normal, 17 busy, 19 no
    answer, 26 answered elsewhere): a leg's only word of why it ended."""
    return {"type": "ChannelDestroyed", "timestamp": ts(at), "cause": cause, "channel": chan(cid)}


async def test_closed_call_hears_the_answering_machine_and_reaches_on_call(closed: Rig) -> None:
    await closed.event(stasis("c1", CLOSED, "inbound", "012319100"))
    assert closed.posts()[:2] == [
        ("channels/c1/answer", {}),
        (
            "channels/c1/play",
            {
                "media": "sound:vvk/welcome,sound:vvk/closed,sound:vvk/hours,sound:vvk/opens-again,"
                "sound:vvk/day-0,sound:vvk/at-clock,sound:vvk/num-8,sound:vvk/on-call-1,"
                "sound:vvk/on-call-2,sound:vvk/on-call-3",
                "playbackId": "c1:pb1",
            },
        ),
    ]
    closed.fake.reset()
    await closed.event({"type": "ChannelDtmfReceived", "digit": "1", "channel": chan("c1")})
    paths = [p for p, _ in closed.posts()]
    assert paths[0] == "playbacks/c1:pb1"  # the message stops at once
    creates = [q for p, q in closed.posts() if p == "channels/create"]
    assert creates == [
        {
            "endpoint": "PJSIP/012319190@trunk",
            "app": "vvk-pbx",
            "appArgs": "leg,c1",
            "channelId": "c1:oncall1",
            "originator": "c1",
        }
    ]
    closed.fake.reset()
    await closed.event(stasis("c1:oncall1", CLOSED, "leg", "c1", name="PJSIP/trunk-2"))
    assert closed.posts() == [
        ("bridges/c1:bridge/addChannel", {"channel": "c1:oncall1"}),
        ("channels/c1:oncall1/dial", {"caller": "c1", "timeout": "72"}),
    ]
    await closed.event(
        {
            "type": "Dial",
            "dialstatus": "ANSWER",
            "timestamp": ts(CLOSED + timedelta(seconds=20)),
            "peer": chan("c1:oncall1"),
        }
    )
    await closed.recorder.flush()
    record = closed.store.calls["c1"]
    assert record.outcome is Outcome.ON_CALL_TRANSFER and record.answered_by == "012319190"
    assert any("pressed 1: connect Socialjouren" in line for line in record.trace)


async def test_the_message_repeats_once_then_ends_politely(closed: Rig) -> None:
    await closed.event(stasis("c2", CLOSED, "inbound", "012319100"))
    await closed.event(
        {"type": "PlaybackFinished", "playback": {"id": "c2:pb1", "target_uri": "channel:c2"}}
    )
    plays = [q["media"] for p, q in closed.posts() if p == "channels/c2/play"]
    assert plays[1].startswith("sound:vvk/repeat,sound:vvk/welcome")
    await closed.event(
        {"type": "PlaybackFinished", "playback": {"id": "c2:pb2", "target_uri": "channel:c2"}}
    )
    plays = [q["media"] for p, q in closed.posts() if p == "channels/c2/play"]
    assert plays[2] == "sound:vvk/goodbye"
    await closed.event(
        {"type": "PlaybackFinished", "playback": {"id": "c2:pb3", "target_uri": "channel:c2"}}
    )
    assert closed.posts()[-1] == ("channels/c2", {"reason": "normal"})
    await closed.recorder.flush()
    assert closed.store.calls["c2"].outcome is Outcome.CLOSED


async def test_open_call_rings_every_operator_with_no_prompt_and_logs_rings(open_: Rig) -> None:
    t0 = OPEN
    await open_.event(stasis("c3", t0, "inbound", "012319100"))
    posts = open_.posts()
    assert not any(p.endswith("/play") or p.endswith("/answer") for p, _ in posts)  # A3
    assert not any(p.endswith("/ring") for p, _ in posts)  # the dialplan's Ringing() did it
    assert [q["endpoint"] for p, q in posts if p == "channels/create"] == [
        "PJSIP/1001",
        "PJSIP/1002",
    ]
    for leg in ("c3:op1", "c3:op2"):
        await open_.event(stasis(leg, t0, "leg", "c3", name=f"PJSIP/{leg}"))
        await open_.event(
            {
                "type": "Dial",
                "dialstatus": "RINGING",
                "timestamp": ts(t0 + timedelta(seconds=0.1)),
                "peer": chan(leg),
            }
        )
    open_.fake.reset()
    await open_.event(
        {
            "type": "Dial",
            "dialstatus": "ANSWER",
            "timestamp": ts(t0 + timedelta(seconds=7)),
            "peer": chan("c3:op2"),
        }
    )
    assert ("channels/c3/answer", {}) in open_.posts()
    # The other phone stops, told the call was answered elsewhere: no missed call on it.
    assert ("channels/c3:op1", {"reason": "answered_elsewhere"}) in open_.posts()
    await open_.recorder.flush()
    record = open_.store.calls["c3"]
    assert (record.answered_by, record.rings, record.within_goal) == ("1002", 2, True)
    assert record.ring_started_at == t0 + timedelta(seconds=0.1)


async def test_a_caller_who_hangs_up_while_ringing_is_abandoned(open_: Rig) -> None:
    await open_.event(stasis("c4", OPEN, "inbound", "012319100"))
    await open_.event(
        {"type": "StasisEnd", "timestamp": ts(OPEN + timedelta(seconds=9)), "channel": chan("c4")}
    )
    await open_.recorder.flush()
    record = open_.store.calls["c4"]
    assert record.outcome is Outcome.ABANDONED and record.ended_at == OPEN + timedelta(seconds=9)
    deletes = [r.path for r in open_.fake.requests("DELETE")]
    assert {"channels/c4:op1", "channels/c4:op2", "bridges/c4:bridge"} <= set(deletes)


def dial(leg: str, status: str, at: datetime = OPEN) -> dict[str, Any]:
    return {"type": "Dial", "timestamp": ts(at), "dialstatus": status, "peer": chan(leg)}


def ended(cid: str, at: datetime) -> dict[str, Any]:
    """A caller's channel leaving our app (a leg's end is its ``destroyed``)."""
    return {"type": "StasisEnd", "timestamp": ts(at), "channel": chan(cid)}


def created(rig: Rig) -> list[str]:
    """The ids of the leg channels the controller created, in order."""
    return [r.query["channelId"] for r in rig.fake.requests("POST") if r.path == "channels/create"]


async def test_when_every_operator_is_busy_the_caller_waits_with_welcome_and_ringback(
    open_: Rig,
) -> None:
    await open_.event(stasis("c5", OPEN, "inbound", "012319100"))
    # A phone that answers 486 ends its leg with cause 17: ARI's dial sends no
    # Dial BUSY (checked on Asterisk 22.10).
    for leg in ("c5:op1", "c5:op2"):
        await open_.event(destroyed(leg, cause=17))
    assert open_.posts()[-2:] == [
        ("channels/c5/answer", {}),
        (
            "channels/c5/play",
            {
                "media": "sound:vvk/welcome,sound:vvk/please-hold,tone:ring;tonezone=se",
                "playbackId": "c5:pb1",
            },
        ),
    ]
    # Busy phones are left alone for a while: nothing rings again at once.
    assert created(open_) == ["c5:op1", "c5:op2"]
    assert "c5" in open_.queue.waiting
    await open_.recorder.flush()
    assert [open_.store.legs[leg].status for leg in ("c5:op1", "c5:op2")] == ["BUSY", "BUSY"]
    await open_.advance(29)
    assert created(open_) == ["c5:op1", "c5:op2"]
    # After the pause (on the controller's one clock) they are offered the caller again.
    await open_.advance(1)
    assert created(open_) == ["c5:op1", "c5:op2", "c5:op3", "c5:op4"]


async def test_a_call_nobody_answers_overflows_to_the_configured_unit(open_: Rig) -> None:
    await open_.event(stasis("c5", OPEN, "inbound", "012319100"))
    await open_.advance(59)
    assert created(open_) == ["c5:op1", "c5:op2"]
    await open_.advance(1)
    # The operators' legs end and the unit's members ring, in directory order (A6).
    assert ("channels/c5:op1", {"reason": "normal"}) in [
        (r.path, r.query) for r in open_.fake.requests("DELETE")
    ]
    assert created(open_)[2:] == ["c5:ovf3", "c5:ovf4", "c5:ovf5"]
    endpoints = [
        r.query["endpoint"] for r in open_.fake.requests("POST") if r.path == "channels/create"
    ]
    assert endpoints[2:] == ["PJSIP/1101", "PJSIP/1102", "PJSIP/1103"]
    await open_.event(dial("c5:ovf4", "ANSWER", OPEN + timedelta(seconds=70)))
    await open_.recorder.flush()
    record = open_.store.calls["c5"]
    assert record.answered_by == "1102"
    assert (record.rings, record.within_goal) == (12, False)
    assert any(line.startswith("[A6] no person answered in 60 s") for line in record.trace)
    assert all(op.call is None for op in open_.queue.operators.values())


async def test_with_no_overflow_group_the_call_goes_to_the_fallback(
    sample_settings: Settings,
) -> None:
    settings = sample_settings.model_copy(
        update={"queue": sample_settings.queue.model_copy(update={"overflow": ()})}
    )
    async for rig in make_rig(settings, OPEN):
        await rig.event(stasis("c5", OPEN, "inbound", "012319100"))
        await rig.advance(60)
        assert rig.posts()[-1] == (
            "channels/c5/continue",
            {"context": "vvk-fallback-inbound", "extension": "s", "priority": "1"},
        )
        await rig.recorder.flush()
        assert rig.store.calls["c5"].outcome is Outcome.NO_ANSWER


async def test_one_busy_operator_takes_the_external_caller_before_the_internal_one(
    sample_settings: Settings,
) -> None:
    settings = sample_settings.model_copy(update={"operators": sample_settings.operators[:1]})
    async for rig in make_rig(settings, OPEN):
        await rig.event(stasis("e1", OPEN, "inbound", "012319100"))
        await rig.event(dial("e1:op1", "RINGING"))
        await rig.event(dial("e1:op1", "ANSWER", OPEN + timedelta(seconds=2)))
        # The operator is talking: an internal caller, then an external one, wait.
        await rig.advance(5)
        await rig.event(stasis("i1", OPEN + timedelta(seconds=5), "internal", "9", number="1101"))
        await rig.advance(3)
        await rig.event(stasis("e2", OPEN + timedelta(seconds=8), "inbound", "012319100"))
        assert created(rig) == ["e1:op1"]
        assert set(rig.queue.waiting) == {"i1", "e2"}
        assert tuple(p for p, _ in rig.posts() if p.endswith("/play")) == (
            "channels/i1/play",
            "channels/e2/play",
        )
        # The first caller hangs up: the external caller is offered first (A4).
        await rig.event(ended("e1", OPEN + timedelta(seconds=30)))
        assert created(rig) == ["e1:op1", "e2:op1"]
        await rig.event(dial("e2:op1", "ANSWER", OPEN + timedelta(seconds=31)))
        await rig.event(destroyed("e2:op1", OPEN + timedelta(seconds=40)))
        assert created(rig) == ["e1:op1", "e2:op1", "i1:op1"]
        await rig.recorder.flush()
        e2 = rig.store.calls["e2"]
        # Answered 23 s after arrival: ring 4 of the 6 s cadence, within the goal (A1, A2).
        assert (e2.answered_by, e2.rings, e2.within_goal) == ("1001", 4, True)


async def test_longest_idle_rings_one_operator_per_caller(sample_settings: Settings) -> None:
    settings = sample_settings.model_copy(
        update={"queue": sample_settings.queue.model_copy(update={"strategy": "longest-idle"})}
    )
    async for rig in make_rig(settings, OPEN):
        await rig.event(stasis("a", OPEN, "inbound", "012319100"))
        await rig.event(stasis("b", OPEN, "inbound", "012319100"))
        await rig.event(stasis("c", OPEN, "inbound", "012319100"))
        assert created(rig) == ["a:op1", "b:op1"]
        dials = {r.path: r.query for r in rig.fake.requests("POST") if r.path.endswith("/dial")}
        assert dials == {}  # legs dial on their own StasisStart
        endpoints = [
            r.query["endpoint"] for r in rig.fake.requests("POST") if r.path == "channels/create"
        ]
        assert endpoints == ["PJSIP/1001", "PJSIP/1002"]
        # 1001 lets it ring out: it goes to the back of the idle order; a goes back in line
        # ahead of c (arrival order) and rings 1001 again, the only free one.
        await rig.advance(18)
        await rig.event(destroyed("a:op1", OPEN + timedelta(seconds=18), cause=19))
        assert created(rig)[-1] == "a:op2"
        assert rig.queue.waiting.keys() == {"c"}
        await rig.recorder.flush()
        assert rig.store.legs["a:op1"].status == "NOANSWER"


async def test_an_unexpected_error_sends_the_caller_to_the_fallback(open_: Rig) -> None:
    open_.fake.fail["bridges"] = 500
    await open_.event(stasis("c6", OPEN, "inbound", "012319100"))
    assert any(r.path == "channels/c6/continue" for r in open_.fake.requests("POST"))
    await open_.recorder.flush()
    assert open_.store.calls["c6"].outcome is Outcome.FALLBACK


async def test_an_operator_phone_that_is_not_registered_is_skipped_and_the_other_rings(
    open_: Rig,
) -> None:
    # Asterisk answers 500 "Allocation failed" for a phone with no registration.
    open_.fake.fail_create["PJSIP/1002"] = 500
    await open_.event(stasis("c6", OPEN, "inbound", "012319100"))
    assert created(open_) == ["c6:op1", "c6:op2"]
    assert not any(r.path.endswith("/continue") for r in open_.fake.requests("POST"))
    await open_.event(dial("c6:op1", "ANSWER", OPEN + timedelta(seconds=5)))
    await open_.recorder.flush()
    record = open_.store.calls["c6"]
    assert (record.answered_by, record.rings, record.outcome) == ("1001", 1, Outcome.ANSWERED)
    assert open_.store.legs["c6:op2"].status == "CHANUNAVAIL"
    # The offline phone is left alone for a while, as a busy one is (A6).
    assert open_.queue.operators["1002"].unavailable_until is not None


async def test_a_person_whose_phone_is_not_registered_gets_the_menu(open_: Rig) -> None:
    open_.fake.fail_create["PJSIP/1101"] = 500
    await open_.event(stasis("p0", OPEN, "inbound", "0123191101"))
    assert played_media(open_, "p0") == [
        "sound:vvk/name-1101,sound:vvk/not-answering,sound:vvk/referral-menu"
    ]
    assert not any(r.path.endswith("/continue") for r in open_.fake.requests("POST"))


async def test_a_caller_who_is_already_gone_is_not_sent_anywhere(open_: Rig) -> None:
    open_.fake.gone.add("c6")  # every REST call about c6 answers 404
    await open_.event(stasis("c6", OPEN, "inbound", "012319100"))
    assert not any(r.path.endswith("/continue") for r in open_.fake.requests("POST"))


async def test_hanging_up_on_the_answering_machine_is_logged_closed(closed: Rig) -> None:
    await closed.event(stasis("c8", CLOSED, "inbound", "012319100"))
    # Asterisk ends the playback as failed, then the channel leaves Stasis.
    await closed.event(
        {
            "type": "PlaybackFinished",
            "playback": {"id": "c8:pb1", "target_uri": "channel:c8", "state": "failed"},
        }
    )
    await closed.event(
        {
            "type": "StasisEnd",
            "timestamp": ts(CLOSED + timedelta(seconds=10)),
            "channel": chan("c8"),
        }
    )
    await closed.recorder.flush()
    assert [p for p, _ in closed.posts()].count("channels/c8/play") == 1  # no replay
    record = closed.store.calls["c8"]
    assert record.outcome is Outcome.CLOSED and record.ended_at == CLOSED + timedelta(seconds=10)


async def test_an_on_call_number_that_fails_stops_the_ring_tone_and_falls_back(closed: Rig) -> None:
    await closed.event(stasis("c9", CLOSED, "inbound", "012319100"))
    await closed.event({"type": "ChannelDtmfReceived", "digit": "1", "channel": chan("c9")})
    closed.fake.reset()
    await closed.event(destroyed("c9:oncall1", CLOSED, cause=19))
    paths = [p for p, _ in closed.posts()]
    assert paths.index("playbacks/c9:pb2") < paths.index("channels/c9/continue")


async def test_unknown_internal_number_is_told_so_by_the_dialplan(open_: Rig) -> None:
    await open_.event(stasis("c10", OPEN, "internal", "4711", number="1101"))
    assert open_.posts() == [
        (
            "channels/c10/continue",
            {"context": "vvk-fallback-internal", "extension": "4711", "priority": "1"},
        )
    ]


async def test_a_locked_database_delays_the_log_but_loses_nothing(open_: Rig) -> None:
    open_.store.fail_next = 2
    await open_.event(stasis("c7", OPEN, "inbound", "012319100"))
    await open_.event(
        {"type": "StasisEnd", "timestamp": ts(OPEN + timedelta(seconds=3)), "channel": chan("c7")}
    )
    await open_.recorder.flush()
    assert open_.store.calls["c7"].outcome is Outcome.ABANDONED


async def test_resync_ends_or_hands_over_what_no_one_controls(open_: Rig) -> None:
    def left(cid: str, data: str) -> Channel:
        return Channel.parse(
            {"id": cid, "name": cid, "dialplan": {"app_name": "Stasis", "app_data": data}}
        )

    await open_.reconciliation.take_over(
        [
            left("a", "vvk-pbx,inbound,012319100"),
            left("b", "vvk-pbx,leg,a"),
            left("c", "vvk-pbx,internal,1102"),
            left("d", "other,x"),
            left("e", "vvk-pbx,feature,*98#"),
        ]
    )

    def stops(cid: str) -> list[tuple[str, dict[str, str]]]:
        # The old process's playbacks are stopped first, every id a call's playbacks
        # can have: a playing channel leaves Stasis only when its playback ends.
        return [(f"playbacks/{cid}:pb{n}", {}) for n in range(1, 17)]

    assert open_.posts() == [
        *stops("a"),
        (
            "channels/a/continue",
            {"context": "vvk-fallback-inbound", "extension": "s", "priority": "1"},
        ),
        # Out of Stasis, still followed: the fallback's answer and the real end.
        ("applications/vvk-pbx/subscription", {"eventSource": "channel:a"}),
        ("channels/b", {"reason": "normal"}),
        *stops("c"),
        (
            "channels/c/continue",
            {"context": "vvk-fallback-internal", "extension": "1102", "priority": "1"},
        ),
        ("applications/vvk-pbx/subscription", {"eventSource": "channel:c"}),
        *stops("e"),
        # A dial code goes to the feature fallback, which says the service is away.
        (
            "channels/e/continue",
            {"context": "vvk-fallback-feature", "extension": "s", "priority": "1"},
        ),
        ("applications/vvk-pbx/subscription", {"eventSource": "channel:e"}),
    ]


async def test_resync_records_the_hand_over_in_the_call_log(open_: Rig) -> None:
    earlier = CallRecord.arrive("a", "0701234567", "012319100", OPEN, _route_of(open_))
    open_.store.calls["a"] = earlier
    orphan = {
        "id": "a",
        "name": "a",
        "dialplan": {"app_name": "Stasis", "app_data": "vvk-pbx,inbound,012319100"},
    }
    open_.fake.channels = [orphan]
    channels = await open_.reconciliation.resync()
    assert open_.store.calls["a"].outcome is Outcome.IN_PROGRESS, "resync needs no database"
    await open_.reconciliation.follow_up(channels)
    await open_.recorder.flush()
    record = open_.store.calls["a"]
    assert record.outcome is Outcome.FALLBACK
    assert record.trace[-1] == "[resync] the controller restarted: handed to the dialplan fallback"


def _route_of(rig: Rig) -> Route:
    policy = rig.controller.policy
    return route(
        CallKind.INBOUND, "0701234567", "012319100", OPEN, policy.calendar, policy.numbering
    )


def refer(leg: str, to: str, state: str | None = None) -> dict[str, Any]:
    """A ChannelTransfer event as Asterisk 22 sends it for a REFER (``events.json``)."""
    event: dict[str, Any] = {
        "type": "ChannelTransfer",
        "timestamp": ts(OPEN),
        "refer_to": {"requested_destination": {"destination": to}},
        "referred_by": {"source_channel": chan(leg)},
    }
    if state is not None:
        event["state"] = state
    return event


async def answered_by_operator(rig: Rig, cid: str = "t1") -> None:
    await rig.event(stasis(cid, OPEN, "inbound", "012319100"))
    await rig.event(dial(f"{cid}:op1", "RINGING"))
    await rig.event(dial(f"{cid}:op1", "ANSWER", OPEN + timedelta(seconds=3)))
    await rig.event(destroyed(f"{cid}:op2", OPEN + timedelta(seconds=3), cause=26))  # lost


async def test_an_operator_transfers_a_caller_from_the_phone(open_: Rig) -> None:
    await answered_by_operator(open_)
    creates = [r for r in open_.fake.requests("POST") if r.path == "channels/create"]
    assert all(
        r.body == {"variables": {"PJSIP_TRANSFER_HANDLING()": "ari-only"}} for r in creates
    ), "legs take REFER through ARI"
    before = len(open_.posts())
    await open_.event(refer("t1:op1", "1201"))
    assert open_.posts()[before:] == [
        ("channels/t1:op1/transfer_progress", {"states": "channel_answered"}),
        ("channels/t1:op1", {"reason": "normal"}),
        ("channels/t1/play", {"media": "tone:ring;tonezone=se", "playbackId": "t1:pb1"}),
        (
            "channels/create",
            {
                "endpoint": "PJSIP/1201",
                "app": "vvk-pbx",
                "appArgs": "leg,t1",
                "channelId": "t1:xfer3",
                "originator": "t1",
            },
        ),
    ]
    # Asterisk repeats the event with the state we reported: nothing more to do.
    await open_.event(refer("t1:op1", "1201", state="channel_answered"))
    await open_.event(destroyed("t1:op1", OPEN + timedelta(seconds=20)))
    assert open_.call("t1"), "the operator leaving does not end a transferred call"
    await open_.event(dial("t1:xfer3", "RINGING", OPEN + timedelta(seconds=20)))
    await open_.event(dial("t1:xfer3", "ANSWER", OPEN + timedelta(seconds=26)))
    await open_.recorder.flush()
    record = open_.store.calls["t1"]
    assert (record.answered_by, record.rings, record.within_goal) == ("1001", 1, True)
    assert "[A5] transferred by 1001 to 1201 via 1001's phone (REFER)" in record.trace
    assert "[A5] 1201 answered the transfer" in record.trace
    leg = open_.store.legs["t1:xfer3"]
    assert (leg.ring_started_at, leg.answered_at) == (
        OPEN + timedelta(seconds=20),
        OPEN + timedelta(seconds=26),
    )
    assert open_.queue.operators["1001"].call is None, "the operator is free again"


async def test_a_refer_to_an_unknown_number_is_declined_and_the_call_stays(open_: Rig) -> None:
    await answered_by_operator(open_)
    before = len(open_.posts())
    await open_.event(refer("t1:op1", "4711"))
    assert open_.posts()[before:] == [
        ("channels/t1:op1/transfer_progress", {"states": "channel_declined"})
    ]
    assert open_.call("t1").state == Connected("t1:op1", "1001")


async def test_an_unanswered_transfer_to_an_operator_comes_back_to_the_switchboard(
    open_: Rig,
) -> None:
    await answered_by_operator(open_)
    await open_.event(refer("t1:op1", "1002"))
    await open_.event(destroyed("t1:op1", OPEN + timedelta(seconds=20)))
    await open_.advance(80)
    await open_.event(destroyed("t1:xfer3", OPEN + timedelta(seconds=80), cause=19))
    assert created(open_)[-2:] == ["t1:op4", "t1:op5"]
    await open_.recorder.flush()
    assert "[A6] the transfer was not answered: back to the switchboard" in (
        open_.store.calls["t1"].trace
    )
    # Back in line it overflows like any call nobody answers (A6): it never waits forever.
    await open_.advance(60)
    assert [leg for leg in created(open_) if ":ovf" in leg] == ["t1:ovf6", "t1:ovf7", "t1:ovf8"]


async def test_a_transfer_to_a_referred_person_gives_the_referral_and_keeps_it(
    open_: Rig,
) -> None:
    await referred(open_, "1201", 5)
    await answered_by_operator(open_)
    await open_.event(refer("t1:op1", "1201"))
    referral_menu = (
        "sound:vvk/name-1201,sound:vvk/reason-5,sound:vvk/and-back,sound:vvk/today,"
        "sound:vvk/at-clock,sound:vvk/num-14,sound:vvk/num-30,sound:vvk/referral-menu"
    )
    assert played_media(open_, "t1")[-1] == referral_menu
    # The operator's leg ends after the hand-over: the caller stays in the menu.
    await open_.event(destroyed("t1:op1", OPEN + timedelta(seconds=20)))
    assert played_media(open_, "t1")[-1] == referral_menu
    assert open_.call("t1").state == Menu("1201")
    assert not [leg for leg in created(open_) if "xfer" in leg], "1201 never rang"


async def test_an_unanswered_transfer_to_a_person_gets_the_menu(open_: Rig) -> None:
    await answered_by_operator(open_)
    await open_.event(refer("t1:op1", "1201"))
    await open_.event(destroyed("t1:op1", OPEN + timedelta(seconds=20)))
    await open_.event(destroyed("t1:xfer3", OPEN + timedelta(seconds=44), cause=19))
    assert played_media(open_, "t1")[-1] == (
        "sound:vvk/name-1201,sound:vvk/not-answering,sound:vvk/referral-menu"
    )


async def test_a_finished_call_leaves_nothing_behind(open_: Rig) -> None:
    await answered_by_operator(open_, "f1")
    await open_.event(ended("f1", OPEN + timedelta(seconds=30)))
    await open_.event(destroyed("f1:op1", OPEN + timedelta(seconds=30)))
    registry = open_.controller.registry
    assert (registry.lines, registry.owner, open_.queue.waiting) == ({}, {}, {})
    assert all(op.call is None for op in open_.queue.operators.values())
    assert open_.timers.running() == set(), "its overflow timer went with it"
    await open_.recorder.flush()
    assert open_.store.legs["f1:op1"].ended_at == OPEN + timedelta(seconds=30)


def played_media(rig: Rig, cid: str) -> list[str]:
    return [q["media"] for p, q in rig.posts() if p == f"channels/{cid}/play"]


async def test_a_staff_code_sets_the_referral_and_reads_it_back(open_: Rig) -> None:
    await open_.event(stasis("k1", OPEN, "feature", "*23*2*1430#", number="1101"))
    [referral] = open_.referrals.referrals
    assert (referral.extension, referral.reason, referral.end) == (
        "1101",
        2,
        OPEN.replace(hour=14, minute=30),
    )
    assert referral.source is Source.PHONE
    assert open_.posts()[0] == ("channels/k1/answer", {})
    assert played_media(open_, "k1") == [
        "sound:vvk/code-referred,sound:vvk/name-1101,sound:vvk/reason-2,sound:vvk/and-back,"
        "sound:vvk/today,sound:vvk/at-clock,sound:vvk/num-14,sound:vvk/num-30"
    ]
    await open_.event(
        {"type": "PlaybackFinished", "playback": {"id": "k1:pb1", "target_uri": "channel:k1"}}
    )
    assert open_.posts()[-1] == ("channels/k1", {"reason": "normal"})
    await open_.recorder.flush()
    record = open_.store.calls["k1"]
    assert record.outcome is Outcome.FEATURE_CODE
    assert any(line.startswith("[R2] referral set: mote until") for line in record.trace)


async def test_hanging_up_during_the_read_back_keeps_the_referral_and_is_no_lost_call(
    open_: Rig,
) -> None:
    await open_.event(stasis("k8", OPEN, "feature", "*23*2*1430#", number="1101"))
    await open_.event(ended("k8", OPEN + timedelta(seconds=3)))
    assert [r.extension for r in open_.referrals.referrals] == ["1101"]
    await open_.recorder.flush()
    assert open_.store.calls["k8"].outcome is Outcome.FEATURE_CODE


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("*23*99*1430#", "code-error-unknown-reason"),
        ("*23*99*2561#", "code-error-impossible-time"),
        ("*23*2*14#", "code-error-malformed"),
        ("*24*1102*1234*2*1430#", "code-error-wrong-pin"),  # no PIN set for 1102
        ("*24*1999*1234*2*1430#", "code-error-unknown-extension"),
    ],
)
async def test_a_bad_code_gets_a_spoken_error_and_stores_nothing(
    open_: Rig, code: str, error: str
) -> None:
    await open_.event(stasis("k2", OPEN, "feature", code, number="1101"))
    assert open_.referrals.referrals == []
    assert played_media(open_, "k2") == [f"sound:vvk/{error}"]


async def test_clearing_opens_the_phone_and_says_so(open_: Rig) -> None:
    await open_.event(stasis("k3", OPEN, "feature", "#23#", number="1101"))
    assert played_media(open_, "k3") == ["sound:vvk/code-nothing-to-clear"]
    await open_.event(stasis("k4", OPEN, "feature", "*23*1*1300#", number="1101"))
    await open_.event(stasis("k5", OPEN, "feature", "#23#", number="1101"))
    assert played_media(open_, "k5") == ["sound:vvk/code-cleared"]
    assert await open_.referrals.in_force("1101", OPEN) is None
    [cleared] = open_.referrals.referrals
    assert cleared.cleared_by == "1101", "S1: the phone that opened it"


async def test_an_operator_phone_cannot_set_a_referral(open_: Rig) -> None:
    await open_.event(stasis("k6", OPEN, "feature", "*23*2*1430#", number="1001"))
    assert played_media(open_, "k6") == ["sound:vvk/code-error-unknown-extension"]


def dtmf(cid: str, digit: str) -> dict[str, Any]:
    return {"type": "ChannelDtmfReceived", "digit": digit, "channel": chan(cid)}


def finished(cid: str, n: int) -> dict[str, Any]:
    return {
        "type": "PlaybackFinished",
        "playback": {"id": f"{cid}:pb{n}", "target_uri": f"channel:{cid}", "state": "done"},
    }


async def referred(rig: Rig, extension: str = "1101", reason: int = 2) -> None:
    await rig.referrals.set(
        extension,
        reason,
        OPEN - timedelta(hours=1),
        OPEN.replace(hour=14, minute=30),
        extension,
        Source.PHONE,
    )


async def test_a_caller_to_a_referred_person_hears_why_and_when_then_the_menu(
    open_: Rig,
) -> None:
    await referred(open_)
    await open_.event(stasis("p1", OPEN, "inbound", "0123191101"))
    assert open_.posts()[0] == ("channels/p1/answer", {})
    assert played_media(open_, "p1") == [
        "sound:vvk/name-1101,sound:vvk/reason-2,sound:vvk/and-back,sound:vvk/today,"
        "sound:vvk/at-clock,sound:vvk/num-14,sound:vvk/num-30,sound:vvk/referral-menu"
    ]
    assert created(open_) == [], "the referred person's phone does not ring"
    # 1: the first colleague of the unit without a referral (1102 is referred too).
    await referred(open_, "1102", 1)
    await open_.event(dtmf("p1", "1"))
    assert ("playbacks/p1:pb1", {}) in [(r.path, r.query) for r in open_.fake.requests("DELETE")]
    endpoints = [
        r.query["endpoint"] for r in open_.fake.requests("POST") if r.path == "channels/create"
    ]
    assert endpoints == ["PJSIP/1103"]
    await open_.event(dial("p1:col1", "ANSWER", OPEN + timedelta(seconds=20)))
    await open_.recorder.flush()
    record = open_.store.calls["p1"]
    assert (record.outcome, record.answered_by) == (Outcome.COLLEAGUE, "1103")
    assert any(line.startswith("[R5] 1101 is referred (mote) until") for line in record.trace)


async def test_the_return_heard_is_when_the_persons_unit_answers_again(open_: Rig) -> None:
    # Oskar Dahl's unit (bygg-miljo) has phone hours 09–11 and 13–15 on Mondays: back at
    # 15:30 while the switchboard is still open, he is reachable first at 9 the next day (A7).
    await open_.referrals.set(
        "1303", 2, OPEN, OPEN.replace(hour=15, minute=30), "1303", Source.PHONE
    )
    await open_.event(stasis("p9", OPEN, "inbound", "0123191303"))
    assert played_media(open_, "p9") == [
        "sound:vvk/name-1303,sound:vvk/reason-2,sound:vvk/and-back,sound:vvk/tomorrow,"
        "sound:vvk/at-clock,sound:vvk/num-9,sound:vvk/referral-menu"
    ]
    [referral] = open_.referrals.referrals
    body = views.referral_json(open_.service, referral)
    assert (body["end"], body["announced_end"]) == (
        "2026-11-30T15:30:00+01:00",
        "2026-12-01T09:00:00+01:00",
    )


async def test_voicemail_is_recorded_and_enters_the_ledger_with_its_deadline(
    open_: Rig,
) -> None:
    await referred(open_)
    await open_.event(stasis("p2", OPEN, "inbound", "0123191101"))
    await open_.event(dtmf("p2", "2"))
    assert played_media(open_, "p2")[-1] == "sound:vvk/voicemail-leave"
    await open_.event(finished("p2", 2))
    [record_request] = [r for r in open_.fake.requests("POST") if r.path == "channels/p2/record"]
    assert record_request.query["name"] == "vm-1101-p2"
    assert record_request.query["maxDurationSeconds"] == "120"
    await open_.advance(7)  # the caller speaks
    await open_.event(
        {
            "type": "RecordingFinished",
            "timestamp": ts(OPEN + timedelta(seconds=7)),
            "recording": {
                "name": "vm-1101-p2",
                "target_uri": "channel:p2",
                "state": "done",
                "duration": 7,
            },
        }
    )
    [message] = open_.messages.messages
    assert (message.extension, message.caller, message.duration_s) == ("1101", "0701234567", 7.0)
    # left Monday 10:00:07 on the controller's clock: 2 working days later (V2)
    assert message.left_at == OPEN + timedelta(seconds=7)
    assert message.deadline_at == OPEN + timedelta(days=2, seconds=7)
    assert played_media(open_, "p2")[-1] == "sound:vvk/voicemail-saved"
    await open_.event(finished("p2", 3))
    await open_.recorder.flush()
    assert open_.store.calls["p2"].outcome is Outcome.VOICEMAIL


async def recorded(rig: Rig, cid: str, seconds: int) -> None:
    await rig.event(
        {
            "type": "RecordingFinished",
            "timestamp": ts(OPEN + timedelta(seconds=seconds)),
            "recording": {
                "name": f"vm-1101-{cid}",
                "target_uri": f"channel:{cid}",
                "state": "done",
                "duration": seconds,
            },
        }
    )


def wav(seconds: float) -> bytes:
    """A silent 8 kHz 16-bit mono WAV file, as Asterisk records voicemail."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(seconds * 8000))
    return buffer.getvalue()


async def test_a_ledger_that_fails_gets_the_message_from_the_spool_later(
    open_: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await referred(open_)
    await open_.event(stasis("p5", OPEN, "inbound", "0123191101"))
    await open_.event(dtmf("p5", "2"))
    await open_.event(finished("p5", 2))
    open_.messages.fail = 1  # the database is locked when the message ends
    await recorded(open_, "p5", 9)
    assert open_.messages.messages == []
    assert "message vm-1101-p5 is recorded but the ledger failed" in caplog.text
    # The audio is safe, so the caller is told so, and the call is a voicemail call.
    assert played_media(open_, "p5")[-1] == "sound:vvk/voicemail-saved"
    await open_.event(finished("p5", 3))
    await open_.event(ended("p5", OPEN + timedelta(seconds=14)))
    await open_.recorder.flush()
    assert open_.store.calls["p5"].outcome is Outcome.VOICEMAIL

    # The next round of recovery finds it in Asterisk's spool.
    open_.fake.stored["vm-1101-p5"] = wav(9.0)
    added = await open_.reconciliation.recover_messages()
    [message] = open_.messages.messages
    assert added == [message]
    assert (message.id, message.extension, message.caller, message.duration_s) == (
        "p5",
        "1101",
        "0701234567",
        9.0,
    )
    assert message.recording == "vm-1101-p5"
    assert await open_.reconciliation.recover_messages() == [], "only once"
    await open_.recorder.flush()
    record = open_.store.calls["p5"]
    assert record.outcome is Outcome.VOICEMAIL and record.ended_at is not None
    assert "recovered from Asterisk's spool" in record.trace[-1]


async def test_calls_that_ended_unfollowed_get_an_end_in_the_log(open_: Rig) -> None:
    arrived = OPEN - timedelta(minutes=5)
    gone = CallRecord.arrive("g1", "0701", "012319100", arrived, _route_of(open_))
    alive = CallRecord.arrive("g2", "0702", "012319100", arrived, _route_of(open_))
    done = replace(gone, id="g3").ended(OPEN)
    await open_.event(stasis("g4", OPEN, "inbound", "012319100"))  # ours, in progress
    await answered_by_operator(open_, "g5")
    await open_.event(ended("g5", OPEN + timedelta(seconds=9)))  # ours, just finished
    await open_.recorder.flush()
    stale_g5 = replace(open_.store.calls["g5"], ended_at=None)  # its last write "pending"
    rows = [gone, alive, done, open_.store.calls["g4"], stale_g5]
    assert open_.reconciliation.close_orphans(["g2"], rows) == 1
    await open_.recorder.flush()
    closed = open_.store.calls["g1"]
    assert closed.ended_at is not None and closed.outcome is Outcome.ABANDONED
    assert "ended while no controller followed it" in closed.trace[-1]
    assert "g2" not in open_.store.calls and "g3" not in open_.store.calls
    assert open_.store.calls["g5"].ended_at is not None


async def test_recovery_leaves_calls_in_progress_and_other_databases_alone(open_: Rig) -> None:
    await referred(open_)
    await open_.event(stasis("p7", OPEN, "inbound", "0123191101"))
    await open_.event(dtmf("p7", "2"))
    await open_.event(finished("p7", 2))
    await open_.recorder.flush()
    open_.fake.stored.update(
        {
            "vm-1101-p7": wav(3.0),  # still being recorded
            "vm-1101-elsewhere": wav(5.0),  # a call this database never saw
            "greeting-1101": wav(2.0),  # not a message
        }
    )
    assert await open_.reconciliation.recover_messages() == []
    open_.fake.fail["recordings/stored"] = 500
    assert await open_.reconciliation.recover_messages() == [], "ARI failing: no harm"


async def test_a_dial_code_while_the_database_is_down_gets_a_spoken_apology(
    open_: Rig,
) -> None:
    open_.referrals.fail = 1
    await open_.event(stasis("k7", OPEN, "feature", "*23*2*1430#", number="1101"))
    assert open_.referrals.referrals == []
    assert played_media(open_, "k7") == ["sound:vvk/fallback-feature-unavailable"]
    await open_.event(finished("k7", 1))
    assert open_.posts()[-1] == ("channels/k7", {"reason": "normal"})


async def test_a_caller_who_hangs_up_to_end_the_message_keeps_it(open_: Rig) -> None:
    await referred(open_)
    await open_.event(stasis("p3", OPEN, "inbound", "0123191101"))
    await open_.event(dtmf("p3", "2"))
    await open_.event(finished("p3", 2))
    await open_.event(ended("p3", OPEN + timedelta(seconds=9)))
    assert [m.id for m in open_.messages.messages] == ["p3"]
    await open_.recorder.flush()
    assert open_.store.calls["p3"].outcome is Outcome.VOICEMAIL


async def test_a_person_who_does_not_answer_gets_the_menu_without_a_referral(
    open_: Rig,
) -> None:
    await open_.event(stasis("p4", OPEN, "inbound", "0123191101"))
    [create] = [r for r in open_.fake.requests("POST") if r.path == "channels/create"]
    assert create.query["endpoint"] == "PJSIP/1101"
    await open_.event(stasis("p4:ext1", OPEN, "leg", "p4", name="PJSIP/1101-1"))
    [dial_request] = [r for r in open_.fake.requests("POST") if r.path == "channels/p4:ext1/dial"]
    assert dial_request.query["timeout"] == "24"  # four rings of the 6 s cadence
    await open_.event(destroyed("p4:ext1", OPEN + timedelta(seconds=24), cause=19))
    assert played_media(open_, "p4") == [
        "sound:vvk/name-1101,sound:vvk/not-answering,sound:vvk/referral-menu"
    ]


async def test_zero_takes_the_caller_to_the_switchboard_when_open(open_: Rig) -> None:
    await referred(open_)
    await open_.event(stasis("p5", OPEN, "inbound", "0123191101"))
    await open_.event(dtmf("p5", "0"))
    assert created(open_) == ["p5:op1", "p5:op2"]


@pytest.mark.parametrize(("state", "connected"), [("Up", True), ("Ring", False)])
async def test_an_answer_that_fails_matters_only_if_the_caller_is_still_unanswered(
    open_: Rig, state: str, connected: bool
) -> None:
    open_.fake.fail["channels/a1/answer"] = 500
    open_.fake.channel_states["a1"] = state
    await open_.event(stasis("a1", OPEN, "inbound", "012319100"))
    await open_.event(dial("a1:op1", "ANSWER", OPEN + timedelta(seconds=2)))
    went_to_fallback = any(r.path == "channels/a1/continue" for r in open_.fake.requests("POST"))
    assert went_to_fallback is not connected
    if connected:
        assert open_.call("a1").state == Connected("a1:op1", "1001")


async def test_another_persons_phone_with_the_right_pin_and_a_lock_after_wrong_ones(
    open_: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    open_.pins.records["1102"] = PinRecord.create("1102", "4711")
    # An operator refers 1102 for her, with her PIN.
    await open_.event(stasis("o1", OPEN, "feature", "*24*1102*4711*3*0800#", number="1001"))
    [referral] = open_.referrals.referrals
    assert (referral.extension, referral.reason, referral.set_by) == ("1102", 3, "1001")
    assert played_media(open_, "o1")[0].startswith("sound:vvk/code-referred,sound:vvk/name-1102")
    # Five wrong PINs lock 1102; then even the right one is refused for a while.
    for n in range(1, 6):
        await open_.event(stasis(f"w{n}", OPEN, "feature", "*24*1102*0000*3*0800#", number="1001"))
    assert played_media(open_, "w4") == ["sound:vvk/code-error-wrong-pin"]
    assert played_media(open_, "w5") == ["sound:vvk/code-error-locked"]
    assert "extension 1102 locked until" in caplog.text
    await open_.event(stasis("o2", OPEN, "feature", "#24*1102*4711#", number="1001"))
    assert played_media(open_, "o2") == ["sound:vvk/code-error-locked"]
    assert await open_.referrals.in_force("1102", OPEN) is not None, "nothing was changed"


async def test_staff_listen_to_their_messages_behind_the_pin(open_: Rig) -> None:
    open_.pins.records["1101"] = PinRecord.create("1101", "4711")
    await open_.service.message_left(
        "1101", "0701", "m1", OPEN - timedelta(hours=1), 9.0, "vm-1101-m1"
    )
    await open_.event(stasis("v1", OPEN, "feature", "*98#", number="1101"))
    assert played_media(open_, "v1") == ["sound:vvk/voicemail-pin"]
    for digit in "4712#":  # a wrong PIN first
        await open_.event(dtmf("v1", digit))
    assert played_media(open_, "v1")[-1] == "sound:vvk/voicemail-wrong-pin,sound:vvk/voicemail-pin"
    for digit in "4711#":
        await open_.event(dtmf("v1", digit))
    assert played_media(open_, "v1")[-1] == (
        "sound:vvk/voicemail-message,sound:vvk/num-0,sound:vvk/num-7,sound:vvk/num-0,"
        "sound:vvk/num-1,recording:vm-1101-m1,sound:vvk/voicemail-menu"
    )
    assert open_.messages.messages[0].status is Status.HEARD
    await open_.event(dtmf("v1", "5"))
    assert open_.messages.messages[0].status is Status.CALLED_BACK
    assert played_media(open_, "v1")[-1] == (
        "sound:vvk/voicemail-called-back,sound:vvk/voicemail-end"
    )
    n = len(played_media(open_, "v1"))
    await open_.event(finished("v1", n))
    assert open_.posts()[-1] == ("channels/v1", {"reason": "normal"})


async def test_a_mailbox_without_a_pin_is_refused(open_: Rig) -> None:
    await open_.event(stasis("v2", OPEN, "feature", "*98#", number="1101"))
    for digit in "1234#":
        await open_.event(dtmf("v2", digit))
    assert played_media(open_, "v2")[-1] == "sound:vvk/voicemail-wrong-pin,sound:vvk/voicemail-pin"


async def test_a_transferred_caller_who_chooses_nothing_goes_back_to_the_switchboard(
    open_: Rig,
) -> None:
    await referred(open_, "1201")
    await answered_by_operator(open_)
    await open_.event(refer("t1:op1", "1201"))
    await open_.event(destroyed("t1:op1", OPEN + timedelta(seconds=20)))
    n = len(played_media(open_, "t1"))
    for i in range(3):  # the menu, then twice more
        await open_.event(finished("t1", n + i))
    assert created(open_)[-2:] == ["t1:op3", "t1:op4"], created(open_)
    await open_.recorder.flush()
    assert "[A6] no choice after a transfer: the switchboard" in open_.store.calls["t1"].trace


async def test_a_silent_pin_entry_ends_politely(open_: Rig) -> None:
    await open_.event(stasis("s1", OPEN, "feature", "*98#", number="1101"))
    await open_.event(finished("s1", 1))  # the PIN prompt ended; nothing pressed
    await open_.advance(9)
    assert played_media(open_, "s1") == ["sound:vvk/voicemail-pin"]
    await open_.advance(1)
    assert played_media(open_, "s1")[-1] == "sound:vvk/goodbye"
    await open_.event(finished("s1", 2))
    assert open_.posts()[-1] == ("channels/s1", {"reason": "normal"})


async def test_a_stale_pin_timeout_does_nothing(open_: Rig) -> None:
    await open_.event(stasis("s2", OPEN, "feature", "*98#", number="1101"))
    await open_.event(finished("s2", 1))
    await open_.advance(5)
    await open_.event(dtmf("s2", "4"))  # typing has begun
    await open_.advance(60)
    assert played_media(open_, "s2") == ["sound:vvk/voicemail-pin"]


async def test_a_call_whose_end_was_lost_with_the_socket_is_reaped_at_resync(
    sample_settings: Settings,
) -> None:
    settings = sample_settings.model_copy(update={"operators": sample_settings.operators[:1]})
    async for rig in make_rig(settings, OPEN):
        await answered_by_operator(rig, "r1")
        await rig.event(stasis("r2", OPEN, "inbound", "012319100"))
        assert "r2" in rig.queue.waiting, "1001 talks on r1"
        # The websocket drops; r1's caller and its leg hang up meanwhile. After the
        # reconnect Asterisk lists only r2.
        rig.fake.channels = [chan("r2")]
        await rig.reconciliation.resync()
        await rig.dispatcher.drain()
        assert rig.controller.registry.line("r1") is None
        assert created(rig)[-1] == "r2:op1", "1001 is offered the next caller again"
        await rig.recorder.flush()
        assert rig.store.calls["r1"].ended_at is not None
        assert rig.store.legs["r1:op1"].ended_at is not None


async def test_a_dial_code_that_fails_goes_to_the_feature_fallback(open_: Rig) -> None:
    open_.fake.fail["channels/k9/play"] = 500  # an unexpected error while it is read back
    await open_.event(stasis("k9", OPEN, "feature", "*23*2*1430#", number="1101"))
    assert open_.posts()[-1] == (
        "channels/k9/continue",
        {"context": "vvk-fallback-feature", "extension": "s", "priority": "1"},
    )


async def test_a_mailbox_whose_ledger_fails_says_so_and_hangs_up(open_: Rig) -> None:
    open_.pins.records["1101"] = PinRecord.create("1101", "4711")
    await open_.service.message_left(
        "1101", "0701", "m1", OPEN - timedelta(hours=1), 9.0, "vm-1101-m1"
    )
    await open_.event(stasis("v3", OPEN, "feature", "*98#", number="1101"))
    open_.messages.fail = 2  # the database goes away as the PIN is checked
    for digit in "4711#":
        await open_.event(dtmf("v3", digit))
    assert played_media(open_, "v3")[-1] == "sound:vvk/fallback-feature-unavailable"
    assert not any(r.path.endswith("/continue") for r in open_.fake.requests("POST"))
    await open_.event(finished("v3", 2))
    assert open_.posts()[-1] == ("channels/v3", {"reason": "normal"})


async def test_a_fallback_the_dialplan_refuses_is_retried_then_the_caller_hung_up(
    sample_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sample_settings.model_copy(
        update={"queue": sample_settings.queue.model_copy(update={"overflow": ()})}
    )
    async for rig in make_rig(settings, OPEN):
        rig.fake.fail["channels/c8/continue"] = 500
        await rig.event(stasis("c8", OPEN, "inbound", "012319100"))
        await rig.advance(60)  # nobody answers, no overflow group: the fallback
        continues = [r for r in rig.fake.requests("POST") if r.path == "channels/c8/continue"]
        assert len(continues) == 3
        assert rig.posts()[-1] == ("channels/c8", {"reason": "normal"}), "never left in silence"
        assert "the dialplan fallback failed 3 times: hanging up" in caplog.text


async def test_zero_when_closed_plays_the_closed_message_twice_after_the_menu_replayed(
    closed: Rig,
) -> None:
    # The menu's replays and the answering machine's are separate: the menu played
    # three times, then 0, and the closed message still comes twice (H5).
    await closed.referrals.set(
        "1101", 4, CLOSED - timedelta(days=1), CLOSED + timedelta(days=3), "1101", Source.PHONE
    )
    await closed.event(stasis("z1", CLOSED, "inbound", "0123191101"))
    await closed.event(finished("z1", 1))
    await closed.event(finished("z1", 2))
    await closed.event(dtmf("z1", "0"))
    await closed.event(finished("z1", 4))
    media = played_media(closed, "z1")
    assert media[3].startswith("sound:vvk/welcome,sound:vvk/closed")
    assert media[4].startswith("sound:vvk/repeat,sound:vvk/welcome,sound:vvk/closed")
