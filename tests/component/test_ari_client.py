"""The ARI client against the fake ARI server: REST, auth, errors, reconnects, ordering."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.component.fake_ari import FakeAri
from vvk_pbx.ari.client import (
    AriClient,
    AriConfig,
    AriHttpError,
    AriNotFoundError,
    AriUnavailableError,
    Backoff,
    EventStream,
    OrderedDispatcher,
)
from vvk_pbx.ari.models import (
    ChannelDtmfReceived,
    Dial,
    Event,
    PlaybackFinished,
    StasisStart,
    parse_event,
)
from vvk_pbx.asterisk.prompts import catalogue
from vvk_pbx.bootstrap import check_prompts
from vvk_pbx.config import Settings
from vvk_pbx.domain.calendar import Calendar


def channel(cid: str, number: str = "0701234567") -> dict[str, Any]:
    return {
        "id": cid,
        "name": f"PJSIP/trunk-{cid}",
        "state": "Ring",
        "caller": {"number": number, "name": ""},
        "dialplan": {"exten": "012319100"},
    }


def stasis_start(cid: str) -> dict[str, Any]:
    return {
        "type": "StasisStart",
        "application": "vvk-pbx",
        "timestamp": "2026-11-30T08:00:00.123+0100",
        "args": ["inbound", "012319100"],
        "channel": channel(cid),
    }


def dtmf(cid: str, digit: str) -> dict[str, Any]:
    return {"type": "ChannelDtmfReceived", "digit": digit, "channel": channel(cid)}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = FakeAri()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(fake: FakeAri) -> AsyncIterator[AriClient]:
    ari = AriClient(AriConfig(fake.base_url, fake.user, fake.password, "vvk-pbx", timeout_s=1.0))
    try:
        yield ari
    finally:
        await ari.close()


# ----- models ------------------------------------------------------------------------


def test_known_events_are_typed_with_asterisk_timestamps() -> None:
    event = parse_event(stasis_start("c1"))
    assert isinstance(event, StasisStart)
    assert event.args == ("inbound", "012319100")
    assert event.channel.caller_number == "0701234567"
    assert (
        event.timestamp is not None
        and event.timestamp.isoformat() == "2026-11-30T08:00:00.123000+01:00"
    )
    assert event.channel_id == "c1"


def test_dial_is_keyed_by_its_peer_and_playback_by_its_target() -> None:
    dial = parse_event(
        {"type": "Dial", "dialstatus": "RINGING", "peer": channel("op-1"), "caller": channel("c1")}
    )
    assert isinstance(dial, Dial) and dial.channel_id == "op-1" and dial.dialstatus == "RINGING"
    done = parse_event(
        {
            "type": "PlaybackFinished",
            "playback": {"id": "p", "media_uri": "sound:x", "target_uri": "channel:c1"},
        }
    )
    assert isinstance(done, PlaybackFinished) and done.channel_id == "c1"


def test_unknown_or_malformed_events_fall_back_to_the_generic_event() -> None:
    other = parse_event({"type": "ChannelVarset", "variable": "X", "channel": channel("c1")})
    assert type(other) is Event and other.channel_id == "c1"
    broken = parse_event({"type": "StasisStart", "args": []})  # no channel
    assert type(broken) is Event and broken.type == "StasisStart"


# ----- REST --------------------------------------------------------------------------


async def test_rest_calls_use_basic_auth_and_the_right_paths(
    fake: FakeAri, client: AriClient
) -> None:
    await client.answer("c1")
    playback = await client.play("c1", ["sound:vvk/welcome", "digits:123"], playback_id="pb-9")
    await client.dial("op-1", caller="c1", timeout_s=30)
    requests = fake.requests()
    assert [(r.method, r.path) for r in requests] == [
        ("POST", "channels/c1/answer"),
        ("POST", "channels/c1/play"),
        ("POST", "channels/op-1/dial"),
    ]
    assert requests[1].query == {"media": "sound:vvk/welcome,digits:123", "playbackId": "pb-9"}
    assert requests[2].query == {"caller": "c1", "timeout": "30"}
    assert playback.id == "pb-9" and playback.target_uri == "channel:c1"


async def test_event_filter_is_sent_as_a_json_body(fake: FakeAri, client: AriClient) -> None:
    await client.set_event_filter(["StasisStart", "Dial"])
    [request] = fake.requests("PUT")
    assert request.path == "applications/vvk-pbx/eventFilter"
    assert request.body == {
        "allowed": [{"type": "StasisStart"}, {"type": "Dial"}],
        "disallowed": [],
    }


async def test_a_gone_channel_raises_not_found_but_hangup_tolerates_it(
    fake: FakeAri, client: AriClient
) -> None:
    fake.gone.add("c1")
    with pytest.raises(AriNotFoundError, match="404 Channel not found"):
        await client.answer("c1")
    await client.hangup("c1")  # already gone: fine


async def test_wrong_password_is_an_http_error(fake: FakeAri) -> None:
    ari = AriClient(AriConfig(fake.base_url, fake.user, "wrong", "vvk-pbx"))
    try:
        with pytest.raises(AriHttpError) as info:
            await ari.answer("c1")
        assert info.value.status == 401
    finally:
        await ari.close()


async def test_slow_and_absent_servers_are_unavailable(fake: FakeAri, client: AriClient) -> None:
    fake.delay_s = 2.0  # over the client's 1 s timeout
    with pytest.raises(AriUnavailableError):
        await client.answer("c1")
    closed = AriClient(AriConfig("http://127.0.0.1:1", "u", "p", "vvk-pbx", timeout_s=1.0))
    try:
        with pytest.raises(AriUnavailableError):
            await closed.answer("c1")
    finally:
        await closed.close()


# ----- events --------------------------------------------------------------------------


async def test_events_arrive_typed_after_on_connect(fake: FakeAri, client: AriClient) -> None:
    seen: list[Event] = []
    order: list[str] = []

    async def handler(event: Event) -> None:
        order.append("event")
        seen.append(event)

    async def on_connect() -> None:
        order.append("connect")
        await client.list_channels()

    stream = EventStream(client, OrderedDispatcher(handler), on_connect=on_connect)
    task = asyncio.create_task(stream.run())
    try:
        await fake.wait_connected(1)
        await fake.send_event(stasis_start("c1"))
        await fake.send_event("this is not json")
        await fake.send_event(dtmf("c1", "5"))
        await _until(lambda: len(seen) == 2)
        assert order == ["connect", "event", "event"]
        assert isinstance(seen[0], StasisStart)
        assert isinstance(seen[1], ChannelDtmfReceived) and seen[1].digit == "5"
        assert [r.path for r in fake.requests("GET")] == ["channels"]
    finally:
        stream.stop()
        await task


async def test_reconnects_and_resyncs_after_the_socket_drops(
    fake: FakeAri, client: AriClient
) -> None:
    resyncs = 0

    async def on_connect() -> None:
        nonlocal resyncs
        resyncs += 1

    async def handler(event: Event) -> None:
        pass

    stream = EventStream(
        client, OrderedDispatcher(handler), on_connect=on_connect, backoff=Backoff(0.05, 0.2)
    )
    task = asyncio.create_task(stream.run())
    try:
        await fake.wait_connected(1)
        await fake.drop_connections()
        await fake.wait_connected(2)
        await _until(lambda: resyncs == 2)
        assert stream.connects == 2
    finally:
        stream.stop()
        await task


async def test_a_failing_set_up_does_not_kill_the_stream(fake: FakeAri, client: AriClient) -> None:
    # A database (or anything) that fails during on_connect: the stream reconnects and
    # carries on, instead of leaving /health at 503 until a restart.
    attempts = 0

    async def on_connect() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("database is locked")

    async def handler(event: Event) -> None:
        pass

    stream = EventStream(
        client, OrderedDispatcher(handler), on_connect=on_connect, backoff=Backoff(0.05, 0.2)
    )
    task = asyncio.create_task(stream.run())
    try:
        await fake.wait_connected(2)
        await _until(stream.connected.is_set)
        assert attempts == 2 and not task.done()
    finally:
        stream.stop()
        await task


async def test_another_connection_taking_the_app_is_reported_and_not_fought(
    fake: FakeAri, client: AriClient
) -> None:
    async def handler(event: Event) -> None:
        pass

    stream = EventStream(client, OrderedDispatcher(handler), backoff=Backoff(0.05, 0.2))
    task = asyncio.create_task(stream.run())
    await fake.wait_connected(1)
    await _until(stream.connected.is_set)
    await fake.send_event({"type": "ApplicationReplaced", "application": "vvk-pbx"})
    await asyncio.wait_for(task, 5)  # the stream ends by itself: it never reconnects
    assert stream.replaced.is_set() and not stream.connected.is_set()
    assert fake.connections == 1, "it does not take the app back"


async def test_never_spins_while_asterisk_is_away() -> None:
    # Nothing listens on port 1: every attempt fails at once. The backoff
    # keeps the attempts few: 0.1, 0.2, 0.4, 0.5, 0.5 ... (halves jittered).
    client = AriClient(AriConfig("http://127.0.0.1:1", "u", "p", "vvk-pbx", timeout_s=0.5))

    async def handler(event: Event) -> None:
        pass

    stream = EventStream(
        client, OrderedDispatcher(handler), backoff=Backoff(0.1, 0.5), rng=random.Random(1)
    )
    attempts = 0
    real = stream._one_connection

    async def counting() -> None:
        nonlocal attempts
        attempts += 1
        await real()

    stream._one_connection = counting  # type: ignore[method-assign]
    task = asyncio.create_task(stream.run())
    await asyncio.sleep(1.5)
    stream.stop()
    await task
    await client.close()
    assert 2 <= attempts <= 8, attempts


def test_backoff_is_capped_jittered_and_never_zero() -> None:
    backoff, rng = Backoff(0.2, 5.0), random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(12)]
    assert all(0.1 <= d <= 5.0 for d in delays)
    assert delays[0] <= 0.2 and delays[-1] >= 2.5
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jitter: not in lock-step


async def test_events_of_one_call_stay_in_order_and_a_slow_call_delays_no_other() -> None:
    handled: list[tuple[str, str]] = []
    release = asyncio.Event()

    async def handler(event: Event) -> None:
        assert isinstance(event, ChannelDtmfReceived)
        if event.channel.id == "slow" and event.digit == "1":
            await release.wait()
        handled.append((event.channel.id, event.digit))

    dispatcher = OrderedDispatcher(handler)
    for digit in "123":
        dispatcher.submit(parse_event(dtmf("slow", digit)))
    for digit in "456":
        dispatcher.submit(parse_event(dtmf("fast", digit)))
    await _until(lambda: len(handled) == 3)
    assert handled == [("fast", "4"), ("fast", "5"), ("fast", "6")]
    release.set()
    await dispatcher.drain()
    assert handled[3:] == [("slow", "1"), ("slow", "2"), ("slow", "3")]
    assert dispatcher.active_keys == 0


async def test_a_failing_handler_does_not_stop_the_next_event() -> None:
    handled: list[str] = []

    async def handler(event: Event) -> None:
        assert isinstance(event, ChannelDtmfReceived)
        if event.digit == "1":
            raise RuntimeError("boom")
        handled.append(event.digit)

    dispatcher = OrderedDispatcher(handler)
    for digit in "12":
        dispatcher.submit(parse_event(dtmf("c1", digit)))
    await dispatcher.drain()
    assert handled == ["2"]


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_missing_prompts_are_named_and_logged(
    fake: FakeAri, client: AriClient, sample_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    calendar = Calendar(sample_settings.hours_policy())
    names = sorted(catalogue(sample_settings, calendar))
    fake.sounds["vvk"] = [n for n in names if n not in ("name-1303", "reason-9")]
    assert await check_prompts(client, sample_settings, calendar) == ["name-1303", "reason-9"]
    [request] = fake.requests("GET")
    assert (request.path, request.query) == ("sounds", {"lang": "vvk"})
    assert "2 prompt(s) missing in Asterisk (name-1303, reason-9)" in caplog.text
    assert "vvk-pbx asterisk up" in caplog.text

    fake.sounds["vvk"] = names
    caplog.clear()
    assert await check_prompts(client, sample_settings, calendar) == []
    assert "missing" not in caplog.text


async def test_a_failed_prompt_check_never_stops_the_controller(
    fake: FakeAri, client: AriClient, sample_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail["sounds"] = 500
    calendar = Calendar(sample_settings.hours_policy())
    assert await check_prompts(client, sample_settings, calendar) == []
    assert "cannot check the prompts" in caplog.text


async def test_the_fake_answers_a_route_real_ari_lacks_with_404(client: AriClient) -> None:
    # As Asterisk 22 does ({"message": "Resource not found"}): a misspelt endpoint fails
    # a component test instead of passing it.
    with pytest.raises(AriNotFoundError, match="Resource not found"):
        await client.request("POST", "bridges/b1/addChanel", {"channel": "c1"})
    with pytest.raises(AriNotFoundError):
        await client.request("GET", "channels/c1/whatever")
    await client.request("POST", "bridges/b1/addChannel", {"channel": "c1"})  # a real route
