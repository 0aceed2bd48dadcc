"""The call controller on real Asterisk: `vvk-pbx run` as a process, asserted through the observer."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import (
    CLOSED_AT,
    CONTROLLER_API,
    ONE_OPERATOR,
    OPEN_AT,
    Controller,
    Observer,
    Pbx,
    call_log,
    dial,
    dialplan_app,
    entered_stasis,
    operator_token,
    place_call,
    playback_started,
    played,
    start_carrier,
    start_phone,
    start_transferring_phone,
    transfer,
)
from tests.sse import next_event

SWITCHBOARD = "012319100"


async def _wait_calls(
    database: str, predicate: Callable[[list[dict[str, object]]], bool]
) -> list[dict[str, object]]:
    return await call_log(database, predicate)


async def test_closed_call_hears_the_answering_machine_and_reaches_social_on_call(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(CLOSED_AT)
    carrier = await start_carrier(pbx, ring_ms=500)
    try:
        # Press 1 after the opening time is read; hang up (BYE) 24 s after the answer.
        call = await place_call(pbx, SWITCHBOARD, hold_ms=24000, dtmf=[("1", 16000)])
        entry = await observer.wait_for(
            lambda e: (
                dialplan_app(e, "Stasis")
                and e["dialplan_app_data"] == f"vvk-pbx,inbound,{SWITCHBOARD}"
            ),
            10,
            "the call entering Stasis",
        )
        caller = entry["channel"]["id"]
        await observer.wait_for(
            playback_started(caller),
            10,
            "the answering machine",
        )
        # Asterisk reports each media URI of the playback as it starts it.
        await observer.wait_for(
            playback_started(media="sound:vvk/num-8"),
            20,
            "the next opening time",
        )
        on_call = await observer.wait_for(
            dial("PJSIP/trunk-", "ANSWER"),
            20,
            "the social on-call number answering",
        )
        first = observer.matching(
            lambda e: e.get("type") == "Dial" and e["peer"]["id"] == on_call["peer"]["id"]
        )[0]
        assert "012319190" in first.get("dialstring", ""), first
        media = played(observer, caller)
        assert media[:7] == [
            "sound:vvk/welcome",
            "sound:vvk/closed",
            "sound:vvk/hours",
            "sound:vvk/opens-again",
            "sound:vvk/day-0",
            "sound:vvk/at-clock",
            "sound:vvk/num-8",
        ], media
        assert await call.wait(40) == 0
        calls = await _wait_calls(
            database, lambda cs: any(c["id"] == caller and c["ended_at"] for c in cs)
        )
        [record] = [c for c in calls if c["id"] == caller]
        assert record["outcome"] == "on_call_transfer"
        assert record["answered_by"] == "012319190"
    finally:
        await carrier.stop()


@pytest.mark.parametrize(("ring_ms", "rings", "goal"), [(1200, 2, True), (4400, 5, False)])
async def test_operator_answer_is_logged_with_rings_and_goal(
    pbx: Pbx, observer: Observer, controller: Controller, ring_ms: int, rings: int, goal: bool
) -> None:
    # A 1 s ring cycle (200 ms tone, 800 ms pause) keeps the test short: an
    # answer after 1.2 s is ring 2 (in the goal of 4), after 4.4 s ring 5 (not).
    _, database = await controller(OPEN_AT, tone_ms=200, pause_ms=800)
    operator = await start_phone(pbx, "1001", ring_ms=ring_ms)
    silent = await start_phone(pbx, "1002", ring_ms=86_400_000)
    try:
        call = await place_call(pbx, SWITCHBOARD, hold_ms=1000)
        entry = await observer.wait_for(
            lambda e: (
                dialplan_app(e, "Stasis") and e["dialplan_app_data"].startswith("vvk-pbx,inbound")
            ),
            10,
            "Stasis",
        )
        caller = entry["channel"]["id"]
        ringing = await observer.wait_for(
            dial("PJSIP/1001-", "RINGING"),
            10,
            "1001 ringing",
        )
        answered = await observer.wait_for(
            dial("PJSIP/1001-", "ANSWER"),
            15,
            "1001 answering",
        )
        assert not played(observer, caller), "A3: no prompt in front of a free operator"
        # The caller was told it rings (180) by the dialplan before the controller acted.
        assert observer.matching(
            lambda e: (
                dialplan_app(e, "Ringing")
                and e["channel"]["id"] == caller
                and e["channel"]["dialplan"]["context"] == "from-trunk"
            )
        )
        assert await call.wait(30) == 0
        calls = await _wait_calls(
            database, lambda cs: any(c["id"] == caller and c["ended_at"] for c in cs)
        )
        [record] = [c for c in calls if c["id"] == caller]
        assert (record["rings"], record["within_goal"], record["answered_by"]) == (
            rings,
            goal,
            "1001",
        )
        asterisk_ring = (
            datetime.fromisoformat(answered["timestamp"])
            - datetime.fromisoformat(ringing["timestamp"])
        ).total_seconds()
        logged_ring = (
            datetime.fromisoformat(str(record["answered_at"]))
            - datetime.fromisoformat(str(record["ring_started_at"]))
        ).total_seconds()
        assert abs(logged_ring - ring_ms / 1000) <= 0.3, (logged_ring, asterisk_ring)
    finally:
        await operator.stop()
        await silent.stop()


async def test_a_killed_controller_leaves_calls_to_the_fallback_and_recovers(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    process, database = await controller(CLOSED_AT)
    first = await place_call(pbx, SWITCHBOARD, caller_number="0700000001", hold_ms=-1)
    first_id = await entered_stasis(observer, "0700000001", "the first call in Stasis")
    await observer.wait_for(
        playback_started(first_id),
        10,
        "the controller answering the first call",
    )
    process.kill()  # SIGKILL: no goodbye to Asterisk
    process.wait(10)

    # While it is down, a new call takes the dialplan fallback at once.
    second = await place_call(pbx, SWITCHBOARD, caller_number="0700000002", hold_ms=1500)
    second_id = await entered_stasis(observer, "0700000002", "the second call trying Stasis")
    await observer.wait_for(
        lambda e: (
            e.get("type") == "ChannelVarset"
            and e.get("variable") == "STASISSTATUS"
            and e.get("value") == "FAILED"
            and e["channel"]["id"] == second_id
        ),
        10,
        "the second call falling back",
    )

    # Restarted, it is connected within 5 s, hands the orphaned first call to
    # the fallback, and answers new calls again.
    loop = asyncio.get_running_loop()
    started = loop.time()
    await controller(CLOSED_AT)
    assert loop.time() - started < 5.0
    await observer.wait_for(
        lambda e: (
            dialplan_app(e, "NoOp")
            and e["channel"]["id"] == first_id
            and e["channel"]["dialplan"]["context"] == "vvk-fallback-inbound"
        ),
        10,
        "the orphaned first call handed to the fallback",
    )
    third = await place_call(pbx, SWITCHBOARD, caller_number="0700000003", hold_ms=2000)
    third_id = await entered_stasis(observer, "0700000003", "the third call in Stasis")
    await observer.wait_for(
        playback_started(third_id),
        10,
        "the restarted controller answering",
    )
    assert await third.wait(30) == 0
    await second.wait(60)
    await observer.rest("DELETE", f"channels/{first_id}")  # the first caller hangs up
    await first.stop()

    calls = await _wait_calls(
        database, lambda cs: any(c["id"] == third_id and c["ended_at"] for c in cs)
    )
    # The second call's row comes from the CDR, read every 5 s.
    ids = [first_id, second_id, third_id]
    calls = await call_log(
        database,
        lambda cs: all(any(c["id"] == i and c["ended_at"] for c in cs) for i in ids),
        timeout=20,
    )
    ids_logged = [c["id"] for c in calls]
    assert len(ids_logged) == len(set(ids_logged)), "no duplicated rows"
    assert {first_id, second_id, third_id} <= set(ids_logged), "no lost rows"
    by_id = {c["id"]: c for c in calls}
    orphan = by_id[first_id]
    assert orphan["outcome"] == "fallback"
    assert any("[resync]" in str(step) for step in orphan["trace"])  # type: ignore[attr-defined]
    # The second call never reached a controller: its row comes from Asterisk's CDR,
    # with Asterisk's own times (it heard the closed message and hung up).
    fallback = by_id[second_id]
    assert fallback["outcome"] == "fallback" and fallback["caller"] == "0700000002"
    assert any("CDR" in str(step) for step in fallback["trace"])  # type: ignore[attr-defined]
    assert fallback["arrived_at"] < fallback["ended_at"]  # type: ignore[operator]


def rang(observer: Observer, extension: str) -> list[str]:
    """The calls (caller channel ids) whose legs rang ``extension``, in the order they rang."""
    return [
        e["peer"]["id"].split(":")[0]
        for e in observer.matching(dial(f"PJSIP/{extension}-", "RINGING"))
    ]


async def test_one_busy_operator_takes_the_external_caller_before_the_internal_one(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    operator = await start_phone(pbx, "1001", ring_ms=300)
    try:
        # The operator takes a first call and talks for 3 s.
        first = await place_call(pbx, SWITCHBOARD, caller_number="0700000011", hold_ms=3000)
        first_id = await entered_stasis(observer, "0700000011", "the first call")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
        # Meanwhile an internal call waits, then an external one.
        internal = await place_call(pbx, "9", from_extension="1101", hold_ms=14000)
        internal_id = await entered_stasis(observer, "1101", "the internal call")
        await observer.wait_for(
            playback_started(internal_id),
            10,
            "the internal caller hearing the welcome",
        )
        external = await place_call(pbx, SWITCHBOARD, caller_number="0700000012", hold_ms=8000)
        external_id = await entered_stasis(observer, "0700000012", "the external call")
        await observer.wait_for(
            lambda e: (
                e.get("type") == "Dial"
                and e["dialstatus"] == "ANSWER"
                and e["peer"]["id"].startswith(f"{internal_id}:")
            ),
            30,
            "the operator answering the internal caller, last",
        )
        # Asterisk's own Dial events: the operator's phone rang for the first
        # call, then the external caller, then the internal one (A4).
        assert rang(observer, "1001") == [first_id, external_id, internal_id]
        # A3: a waiting caller hears the welcome, then ringback (cut short when
        # the operator comes free during it).
        assert played(observer, internal_id)[:3] == [
            "sound:vvk/welcome",
            "sound:vvk/please-hold",
            "tone:ring;tonezone=se",
        ]
        media = played(observer, external_id)
        assert media[0] == "sound:vvk/welcome" and "tone:ring;tonezone=se" in media, media
        assert not played(observer, first_id), "A3: no prompt in front of a free operator"
        for sipp in (first, external, internal):
            assert await sipp.wait(30) == 0
        calls = await _wait_calls(
            database,
            lambda cs: (
                sum(
                    1
                    for c in cs
                    if c["id"] in (first_id, internal_id, external_id) and c["ended_at"]
                )
                == 3
            ),
        )
        by_id = {c["id"]: c for c in calls}
        for call_id in (first_id, external_id, internal_id):
            assert by_id[call_id]["outcome"] == "answered"
            assert by_id[call_id]["answered_by"] == "1001"
        assert by_id[internal_id]["direction"] == "internal"
    finally:
        await operator.stop()


async def test_a_call_nobody_answers_overflows_to_the_unit(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(
        OPEN_AT, edits=(ONE_OPERATOR, ("overflow_after_s = 60", "overflow_after_s = 10"))
    )
    operator = await start_phone(pbx, "1001", ring_ms=86_400_000)
    colleague = await start_phone(pbx, "1102", ring_ms=500)
    try:
        call = await place_call(pbx, SWITCHBOARD, caller_number="0700000021", hold_ms=1000)
        caller = await entered_stasis(observer, "0700000021", "the call")
        await observer.wait_for(dial("PJSIP/1001-", "RINGING"), 10, "the operator ringing")
        answered = await observer.wait_for(
            dial("PJSIP/1102-", "ANSWER"), 20, "the overflow group's 1102 answering"
        )
        entry = observer.matching(
            lambda e: dialplan_app(e, "Stasis") and e["channel"]["id"] == caller
        )[0]
        waited = (
            datetime.fromisoformat(answered["timestamp"])
            - datetime.fromisoformat(entry["timestamp"])
        ).total_seconds()
        assert 10 <= waited < 13, waited
        # The operator's leg was hung up when the call overflowed.
        assert observer.matching(dial("PJSIP/1001-", "CANCEL")) or observer.matching(
            lambda e: (
                e.get("type") == "ChannelDestroyed"
                and e["channel"]["id"].startswith(f"{caller}:op")
            )
        )
        assert await call.wait(20) == 0
        calls = await _wait_calls(
            database, lambda cs: any(c["id"] == caller and c["ended_at"] for c in cs)
        )
        [record] = [c for c in calls if c["id"] == caller]
        assert record["answered_by"] == "1102"
        assert any("[A6]" in str(line) for line in record["trace"])  # type: ignore[attr-defined]
    finally:
        await operator.stop()
        await colleague.stop()


def _leg(record: dict[str, object], leg_id: str) -> dict[str, object]:
    legs = record["legs"]
    assert isinstance(legs, list)
    [leg] = [g for g in legs if g["id"] == leg_id]
    assert isinstance(leg, dict)
    return leg


async def test_an_operator_transfers_the_caller_from_the_phone(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    operator = await start_transferring_phone(pbx, "1001", "1201", ring_ms=300, talk_ms=1000)
    colleague = await start_phone(pbx, "1201", ring_ms=700)
    try:
        call = await place_call(pbx, SWITCHBOARD, caller_number="0700000031", hold_ms=5000)
        caller = await entered_stasis(observer, "0700000031", "the call")
        answered = await observer.wait_for(
            dial("PJSIP/1201-", "ANSWER"), 15, "1201 answering the transferred call"
        )
        assert answered["peer"]["id"] == f"{caller}:xfer2", answered["peer"]["id"]
        ringing = observer.matching(dial("PJSIP/1201-", "RINGING"))[0]
        # The phone asked through SIP REFER; Asterisk told us with ChannelTransfer.
        assert observer.matching(
            lambda e: (
                e.get("type") == "ChannelTransfer"
                and e["refer_to"]["requested_destination"].get("destination") == "1201"
            )
        )
        assert await operator.wait(15) == 0, operator.messages()[-2000:]
        assert await call.wait(20) == 0
        calls = await _wait_calls(
            database, lambda cs: any(c["id"] == caller and c["ended_at"] for c in cs)
        )
        [record] = [c for c in calls if c["id"] == caller]
        assert record["answered_by"] == "1001"
        assert "[A5] transferred by 1001 to 1201 via 1001's phone (REFER)" in record["trace"]  # type: ignore[operator]
        leg = _leg(record, f"{caller}:xfer2")
        assert leg["endpoint"] == "PJSIP/1201"
        # The same instants as Asterisk's events (the log shows them in local time).
        at = datetime.fromisoformat
        assert at(str(leg["ring_started_at"])) == at(ringing["timestamp"])
        assert at(str(leg["answered_at"])) == at(answered["timestamp"])
    finally:
        await operator.stop()
        await colleague.stop()


async def test_an_operator_transfers_the_caller_through_the_api(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    operator = await start_phone(pbx, "1001", ring_ms=300)
    colleague = await start_phone(pbx, "1302", ring_ms=500)
    try:
        call = await place_call(pbx, SWITCHBOARD, caller_number="0700000032", hold_ms=5000)
        caller = await entered_stasis(observer, "0700000032", "the call")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
        status, body = await transfer(caller, "1302", None)
        assert status == 401 and "log in" in body["message"], "S1: no token, no transfer"
        token = operator_token(database)
        status, body = await transfer(caller, "9999", token)
        assert status == 422, body
        status, body = await transfer(caller, "1302", token)
        assert status == 202, body
        answered = await observer.wait_for(
            dial("PJSIP/1302-", "ANSWER"), 15, "1302 answering the transferred call"
        )
        assert answered["peer"]["id"] == f"{caller}:xfer2"
        assert await call.wait(20) == 0
        calls = await _wait_calls(
            database, lambda cs: any(c["id"] == caller and c["ended_at"] for c in cs)
        )
        [record] = [c for c in calls if c["id"] == caller]
        assert "[A5] transferred by 1001 to 1302 via the API" in record["trace"]  # type: ignore[operator]
        assert "[S1] the transfer was asked for by token:e2e-" in "\n".join(record["trace"])  # type: ignore[arg-type]
        assert _leg(record, f"{caller}:xfer2")["answered_at"]
    finally:
        await operator.stop()
        await colleague.stop()


async def _calls_until(
    response: aiohttp.ClientResponse, predicate: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    while True:
        name, message = await next_event(response)
        if name == "change" and message["section"] == "calls" and predicate(message["data"]):
            calls: list[dict[str, Any]] = message["data"]
            return calls


async def test_a_live_call_is_on_the_board_until_it_ends_and_a_stop_ends_the_feed(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    process, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    token = operator_token(database)
    operator = await start_phone(pbx, "1001", ring_ms=2000)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.get(f"{CONTROLLER_API}/events") as response,
        ):
            name, snapshot = await next_event(response)
            assert (name, snapshot["calls"]) == ("snapshot", [])
            call = await place_call(pbx, SWITCHBOARD, caller_number="0700000061", hold_ms=1000)
            caller = await entered_stasis(observer, "0700000061", "the call")
            [shown] = await _calls_until(
                response, lambda cs: bool(cs) and cs[0]["state"] == "ringing"
            )
            assert (shown["id"], shown["caller"], shown["ringing"]) == (
                caller,
                "0700000061",
                ["1001"],
            )
            [shown] = await _calls_until(
                response, lambda cs: bool(cs) and cs[0]["state"] == "connected"
            )
            assert shown["with"] == "1001"
            assert await call.wait(15) == 0
            assert await _calls_until(response, lambda cs: cs == []) == []
            # A controller that stops ends the open pages' streams, and stops at once.
            process.send_signal(signal.SIGTERM)
            while (await next_event(response))[0] != "cut":
                pass
            assert await asyncio.to_thread(process.wait, 10) == 0
    finally:
        await operator.stop()
