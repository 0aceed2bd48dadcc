"""The live feed (issue 11): a snapshot, then each section that changed, over
server-sent events from the real aiohttp application; a page that falls behind
is cut off to a new snapshot; the feed never breaks a call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse

from tests.component.test_api import api, login
from tests.component.test_calls import (
    OPEN,
    Rig,
    destroyed,
    dial,
    ended,
    make_rig,
    stasis,
)
from tests.sse import next_event
from vvk_pbx.config import Settings
from vvk_pbx.domain.access import Role
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.http import api as api_module
from vvk_pbx.services import live
from vvk_pbx.services.live import LiveFeed


@pytest.fixture
async def rig(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for one in make_rig(sample_settings, OPEN):
        yield one


async def section(
    response: ClientResponse, wanted: str, until: Callable[[Any], bool] = lambda _: True
) -> Any:
    """The data of the next change of ``wanted`` for which ``until`` holds."""
    while True:
        name, message = await next_event(response)
        assert name == "change", (name, message)
        if message["section"] == wanted and until(message["data"]):
            return message["data"]


async def test_a_page_gets_the_board_then_each_change_of_a_call(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR) as client:
        response = await client.get("/events")
        assert response.headers["Content-Type"] == "text/event-stream"
        name, snapshot = await next_event(response)
        assert name == "snapshot"
        assert (snapshot["calls"], snapshot["referrals"]) == ([], [])
        assert snapshot["hours"]["open"] is True
        assert snapshot["policy"] == {"cycle_ms": 6000, "goal_rings": 4}
        assert [(o["extension"], o["state"]) for o in snapshot["operators"]] == [
            ("1001", "free"),
            ("1002", "free"),
        ]
        await rig.event(stasis("c1", OPEN, "inbound", "012319100", number="0701234567"))
        [call] = await section(response, "calls")
        assert (call["id"], call["caller"], call["external"], call["state"]) == (
            "c1",
            "0701234567",
            True,
            "waiting",
        )
        [call] = await section(response, "calls", lambda c: c[0]["state"] == "ringing")
        assert call["arrived_at"] == "2026-11-30T10:00:00+01:00"
        assert call["ringing"] == ["1001", "1002"]
        operators = await section(response, "operators", lambda ops: ops[0]["state"] == "ringing")
        assert {o["state"] for o in operators} == {"ringing"}
        await rig.event(dial("c1:op1", "ANSWER", OPEN + timedelta(seconds=3)))
        [call] = await section(response, "calls")
        assert (call["state"], call["with"]) == ("connected", "1001")
        operators = await section(response, "operators", lambda ops: ops[0]["state"] == "talking")
        assert [(o["extension"], o["state"]) for o in operators] == [
            ("1001", "talking"),
            ("1002", "ringing"),
        ]
        await rig.event(destroyed("c1:op2", OPEN + timedelta(seconds=3), cause=26))
        await rig.event(ended("c1", OPEN + timedelta(seconds=30)))
        await rig.event(destroyed("c1:op1", OPEN + timedelta(seconds=30)))
        assert await section(response, "calls", lambda calls: calls == []) == []


async def test_a_referral_set_through_the_api_reaches_every_page(rig: Rig) -> None:
    async with api(rig, Role.REPORTS, "wallboard") as board, api(rig, Role.OPERATOR) as op:
        response = await board.get("/events")
        assert (await next_event(response))[0] == "snapshot"
        put = await op.put("/referrals/1101", json={"reason": 2, "until": "2026-11-30T14:30"})
        assert put.status == 201
        [referral] = await section(response, "referrals")
        assert (referral["extension"], referral["phrase"]) == ("1101", "är på möte")
        await op.delete("/referrals/1101")
        assert await section(response, "referrals") == []


async def test_the_feed_is_for_operators_and_reports(rig: Rig) -> None:
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    async with api(rig) as client:
        await login(client, "1101", "4711")
        response = await client.get("/events")
        assert (response.status, await response.json()) == (
            403,
            {"error": "forbidden", "message": "the live feed is for operators", "fields": []},
        )


async def test_a_page_that_falls_behind_is_cut_off_and_starts_anew(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "BACKLOG", 3)
    feed = LiveFeed(rig.controller, rig.service, rig.clock)
    _, slow = await feed.subscribe()
    for n in range(5):
        feed._put("calls", [n])
    got = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert [m["data"] if m else None for m in got] == [[0], [1], [2], None]
    assert slow not in feed.subscribers
    snapshot, again = await feed.subscribe()
    assert snapshot["calls"] == [4] and snapshot["seq"] == feed.seq, "the snapshot is current"
    feed.close()
    assert again.queue.get_nowait() is None


async def test_a_broken_feed_never_breaks_a_call(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    feed = LiveFeed(rig.controller, rig.service, rig.clock)
    rig.controller.on_change = feed.changed

    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("boom")

    monkeypatch.setattr(feed, "_calls", broken)
    await rig.event(stasis("c1", OPEN, "inbound", "012319100"))
    await rig.event(dial("c1:op1", "ANSWER", OPEN + timedelta(seconds=3)))
    assert rig.call("c1").state.who == "1001"  # type: ignore[union-attr]
    assert "live feed: the board could not be built" in caplog.text


async def test_a_quiet_feed_pings_with_the_time_so_a_page_can_tell_it_lives(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "KEEPALIVE_S", 0.05)
    async with api(rig, Role.OPERATOR) as client:
        response = await client.get("/events")
        await next_event(response)  # the snapshot
        lines = [(await response.content.readline()).decode() for _ in range(3)]
        assert lines[0] == "event: ping\n"
        assert lines[1].startswith('data: {"now": "2026-11-30T10:00')
