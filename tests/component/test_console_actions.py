"""The operator console's actions over the API, on the controller and the fake ARI (issue 11):
presence, svara on a chosen caller, parkera with a recall, koppla med förfrågan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.component.test_api import api
from tests.component.test_calls import (
    OPEN,
    Rig,
    answered_by_operator,
    created,
    destroyed,
    dial,
    make_rig,
    stasis,
)
from vvk_pbx.config import Settings
from vvk_pbx.domain.access import Role
from vvk_pbx.domain.callflow.states import Connected, Consulting, Parked, Queued, Ringing
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.domain.queue import Presence


@pytest.fixture
async def rig(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for one in make_rig(sample_settings, OPEN):
        yield one


async def _both_operators_talking(rig: Rig) -> None:
    """1001 talks on t1; 1002 on t2 (ring-all: each call rings both free ones)."""
    await answered_by_operator(rig, "t1")
    await rig.event(stasis("t2", OPEN, "inbound", "012319100"))
    [leg] = [c for c in created(rig) if c.startswith("t2:op")]
    await rig.event(dial(leg, "ANSWER", OPEN + timedelta(seconds=4)))
    assert rig.call("t2").state == Connected(leg, "1002")


async def test_presence_decides_who_is_offered_and_a_pick_jumps_the_line(rig: Rig) -> None:
    await _both_operators_talking(rig)
    await rig.event(stasis("w1", OPEN, "inbound", "012319100", number="0700000001"))
    await rig.event(stasis("w2", OPEN, "inbound", "012319100", number="0700000002"))
    assert isinstance(rig.call("w1").state, Queued) and isinstance(rig.call("w2").state, Queued)
    async with api(rig, Role.OPERATOR) as client:
        response = await client.post("/operators/1001/presence", json={"presence": "lunch"})
        assert (
            response.status == 422
            and "presence: Input should be 'in', 'paused' or 'out'"
            in (await response.json())["message"]
        )
        response = await client.post("/calls/w2/answer", json={"operator": "1001"})  # 1001 is on t1
        assert (response.status, (await response.json())["message"]) == (
            409,
            "operator 1001 is on a call already",
        )
        rig.controller.set_presence("1001", Presence.PAUSED)
        # 1001's call ends: paused, so nobody in line is offered to 1001.
        await rig.event(destroyed("t1:op1", OPEN + timedelta(seconds=30)))
        await rig.event({"type": "StasisEnd", "channel": {"id": "t1"}})
        assert isinstance(rig.call("w1").state, Queued) and isinstance(rig.call("w2").state, Queued)
        response = await client.post("/calls/w2/answer", json={"operator": "1001"})
        assert response.status == 202, await response.text()
        await rig.dispatcher.drain()
        state = rig.call("w2").state
        assert isinstance(state, Ringing) and created(rig)[-1] == "w2:op1"
        [create] = [r for r in rig.fake.requests("POST") if r.query.get("channelId") == "w2:op1"]
        assert create.body["variables"]["PJSIP_HEADER(add,Call-Info)"].endswith("answer-after=0")
        assert isinstance(rig.call("w1").state, Queued), "the first in line still waits"
        response = await client.post("/calls/w2/answer", json={"operator": "1002"})
        assert (response.status, (await response.json())["message"]) == (
            409,
            "call w2 rings for someone now: nothing to answer",
        )
        await rig.event(dial("w2:op1", "ANSWER", OPEN + timedelta(seconds=40)))
        assert rig.call("w2").state == Connected("w2:op1", "1001")
        response = await client.post("/calls/next/answer", json={"operator": "1001"})
        assert response.status == 409  # busy again
        response = await client.post("/calls/nope/answer", json={"operator": "1001"})
        assert response.status == 404
        response = await client.post("/calls/next/answer")
        assert response.status == 422, "a token has no phone of its own"
        response = await client.post("/calls/next/answer", json={"operator": "1101"})
        assert (response.status, (await response.json())["message"]) == (
            422,
            "1101 is not an operator's extension",
        )
    await rig.recorder.flush()
    assert rig.store.calls["w2"].answered_by == "1001"


async def test_a_parked_caller_rings_the_operator_again_after_the_recall(rig: Rig) -> None:
    await answered_by_operator(rig, "t1")
    async with api(rig, Role.OPERATOR) as client:
        response = await client.post("/calls/t1/park")
        assert response.status == 202, await response.text()
        await rig.dispatcher.drain()
        assert rig.call("t1").state == Parked("1001")
        assert ("channels/t1:op1", {"reason": "normal"}) in rig.posts(), "the operator hangs up"
        await rig.event(destroyed("t1:op1", OPEN + timedelta(seconds=10)))
        response = await client.post("/calls/t1/park")
        assert response.status == 409  # parked already: not connected
        await rig.advance(59)
        assert rig.call("t1").state == Parked("1001")
        await rig.advance(2)  # recall_s = 60 in the sample
        state = rig.call("t1").state
        assert isinstance(state, Ringing), state
        assert created(rig)[-1] == "t1:op3" and rig.fake.requests("POST")[-1].query.get(
            "endpoint", "PJSIP/1001"
        )
        creates = [r.query for r in rig.fake.requests("POST") if r.path == "channels/create"]
        assert creates[-1]["endpoint"] == "PJSIP/1001", "the operator who parked, alone"
    await rig.recorder.flush()
    assert any("[A3] parked by 1001" in line for line in rig.store.calls["t1"].trace)


async def test_a_parked_caller_taken_by_a_paused_operator(rig: Rig) -> None:
    await answered_by_operator(rig, "t1")
    async with api(rig, Role.OPERATOR) as client:
        assert (await client.post("/calls/t1/park")).status == 202
        await rig.event(destroyed("t1:op1", OPEN + timedelta(seconds=10)))
        rig.controller.set_presence("1002", Presence.PAUSED)
        response = await client.post("/calls/t1/answer", json={"operator": "1002"})
        assert response.status == 202, await response.text()
        await rig.dispatcher.drain()
        creates = [r.query for r in rig.fake.requests("POST") if r.path == "channels/create"]
        assert creates[-1]["endpoint"] == "PJSIP/1002"
        await rig.advance(120)  # no recall after a pick
        assert isinstance(rig.call("t1").state, Ringing)


async def test_a_consultation_completed_and_one_taken_back(rig: Rig) -> None:
    await answered_by_operator(rig, "t1")
    async with api(rig, Role.OPERATOR) as client:
        response = await client.post("/calls/t1/transfer", json={"to": "1201", "consult": "yes"})
        assert response.status == 422
        response = await client.post("/calls/t1/consult/complete")
        assert response.status == 409, "no consultation yet"
        response = await client.post("/calls/t1/transfer", json={"to": "1201", "consult": True})
        assert response.status == 202, await response.text()
        await rig.dispatcher.drain()
        posts = rig.posts()
        assert ("bridges", {"type": "mixing", "bridgeId": "t1:consult"}) in posts
        assert ("bridges/t1:bridge/removeChannel", {"channel": "t1:op1"}) in posts
        assert ("bridges/t1:consult/addChannel", {"channel": "t1:op1"}) in posts
        assert isinstance(rig.call("t1").state, Consulting)
        await rig.event(stasis("t1:cons3", OPEN, "leg", "t1"))
        assert ("bridges/t1:consult/addChannel", {"channel": "t1:cons3"}) in rig.posts()
        await rig.event(dial("t1:cons3", "ANSWER", OPEN + timedelta(seconds=20)))
        rig.fake.reset()
        response = await client.post("/calls/t1/consult/complete")
        assert response.status == 202
        await rig.dispatcher.drain()
        assert rig.posts()[:3] == [
            ("bridges/t1:consult/removeChannel", {"channel": "t1:cons3"}),
            ("bridges/t1:bridge/addChannel", {"channel": "t1:cons3"}),
            ("bridges/t1:consult", {}),
        ]
        assert ("channels/t1:op1", {"reason": "normal"}) in rig.posts()
        assert rig.call("t1").state == Connected("t1:cons3", "1201")
        await rig.event(destroyed("t1:op1", OPEN + timedelta(seconds=25)))
        assert rig.call("t1").state == Connected("t1:cons3", "1201"), "the operator left"
        # A second caller: asked, then taken back.
        await answered_by_operator(rig, "t2")
        assert (
            await client.post("/calls/t2/transfer", json={"to": "1202", "consult": True})
        ).status == 202
        await rig.dispatcher.drain()
        response = await client.post("/calls/t2/consult/cancel")
        assert response.status == 202
        await rig.dispatcher.drain()
        assert rig.call("t2").state == Connected("t2:op1", "1001")
        assert ("bridges/t2:bridge/addChannel", {"channel": "t2:op1"}) in rig.posts()
    await rig.recorder.flush()
    assert any("transferred by 1001 to 1201 after asking" in x for x in rig.store.calls["t1"].trace)


async def test_the_directory_and_reasons_for_the_console(rig: Rig) -> None:
    async with api(rig, Role.REPORTS) as client:
        everyone = await (await client.get("/directory")).json()
        assert len(everyone) == len(rig.service.settings.staff)
        names = {p["name"] for p in everyone}
        folded = [n for n in names if any(c in n for c in "ÅÄÖåäö")]
        assert folded, "the sample has names with å, ä or ö"
        one = folded[0]
        plain = one.translate(str.maketrans("ÅÄÖåäöé", "AAOaaoe")).lower()
        found = await (await client.get("/directory", params={"q": plain.split()[0]})).json()
        assert one in {p["name"] for p in found}
        reasons = await (await client.get("/reasons")).json()
        assert {"code": 2, "name": "mote", "phrase": "är på möte"} in reasons
        assert len(reasons) == len(rig.service.settings.referral_reasons)


async def test_an_operator_takes_a_message_into_the_ledger(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR, name="vaxeln") as client:
        for body, status, reason in (
            ({"extension": "9999", "caller": "0701"}, 404, "not in the directory"),
            ({"extension": "1101", "caller": " "}, 422, "number is needed"),
            ({"extension": "1101", "caller": "0701", "when": "now"}, 422, "unknown field"),
            ({"extension": "1101", "caller": 701}, 422, "caller: Input should be a valid string"),
            ({"extension": "1101", "caller": "0701", "note": "x" * 2001}, 422, "too long"),
            ({}, 422, "extension: Field required"),
            ({"extension": "1101", "caller": "abc<script>"}, 422, "no number to call back"),
            ({"extension": "1101", "caller": "07"}, 422, "no number to call back"),
        ):
            response = await client.post("/messages", json=body)
            assert response.status == status, body
            assert reason in (await response.json())["message"]
        assert rig.messages.messages == [], "nothing half stored"
        response = await client.post(
            "/messages",
            json={
                "extension": "1101",
                "caller": "0701234567",
                "name": "<img src=x onerror=alert(1)>",
                "note": "Om fakturan",
            },
        )
        assert response.status == 201, await response.text()
        body = await response.json()
        assert (body["name"], body["note"], body["taken_by"], body["recording"]) == (
            "<img src=x onerror=alert(1)>",
            "Om fakturan",
            "token:vaxeln",
            "",
        )
        # Monday 30 Nov 2026 10:00: two working days on.
        assert body["deadline"] == "2026-12-02T10:00:00+01:00"
        listed = await (await client.get("/messages")).json()
        assert [m["id"] for m in listed] == [body["id"]]
    # The phone's mailbox has nothing to play for it.
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    assert await rig.service.open_mailbox("1101", "4711", rig.clock.now()) == []


async def test_only_operators_work_the_console(rig: Rig) -> None:
    await answered_by_operator(rig, "t1")
    actions = (
        ("/calls/t1/answer", {}),
        ("/calls/next/answer", {}),
        ("/calls/t1/park", {}),
        ("/calls/t1/transfer", {"to": "1201", "consult": True}),
        ("/calls/t1/consult/complete", {}),
        ("/calls/t1/consult/cancel", {}),
        ("/operators/1001/presence", {"presence": "out"}),
        ("/messages", {"extension": "1101", "caller": "0701"}),
    )
    async with api(rig, Role.REPORTS) as client:
        for path, body in actions:
            response = await client.post(path, json=body)
            assert response.status == 403, path
            assert "only an operator" in (await response.json())["message"]
    assert rig.call("t1").state == Connected("t1:op1", "1001")
    assert rig.messages.messages == []
    assert rig.queue.operators["1001"].presence is Presence.IN
