"""The operator console's actions on real Asterisk (issue 11), through the API the console
uses: svara on a chosen caller, parkera with a recall, koppla med förfrågan. Asserted
on Asterisk's own events (the observer) and the call log."""

from __future__ import annotations

import asyncio

from tests.e2e.harness import (
    ONE_OPERATOR,
    OPEN_AT,
    Controller,
    Observer,
    Pbx,
    api,
    call_log,
    dial,
    entered_bridge,
    entered_stasis,
    operator_token,
    place_call,
    start_phone,
)

SWITCHBOARD = "012319100"


def _dialled(observer: Observer, endpoint: str, caller: str) -> list[str]:
    """The legs of ``caller``'s call that Asterisk dialled to ``endpoint`` and were answered."""
    return [
        e["peer"]["id"]
        for e in observer.matching(dial(f"{endpoint}-", "ANSWER"))
        if e["peer"]["id"].startswith(f"{caller}:")
    ]


async def test_the_operator_picks_the_second_caller_in_line(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT)
    token = operator_token(database)
    phones = [await start_phone(pbx, ext, ring_ms=300) for ext in ("1001", "1002")]
    callers = []
    try:
        # Both operators talk; 1001's caller hangs up after 8 s.
        callers.append(await place_call(pbx, SWITCHBOARD, caller_number="0700000071", hold_ms=8000))
        await observer.wait_for(dial("PJSIP/", "ANSWER"), 10, "the first call answered")
        callers.append(
            await place_call(pbx, SWITCHBOARD, caller_number="0700000072", hold_ms=40000)
        )
        await observer.wait_for(
            lambda e: len(observer.matching(dial("PJSIP/", "ANSWER"))) >= 2, 10, "both talking"
        )
        first_operator = next(
            e["peer"]["name"][6:10] for e in observer.matching(dial("PJSIP/", "ANSWER"))
        )
        status, _ = await api(
            "POST", f"/operators/{first_operator}/presence", token, {"presence": "paused"}
        )
        assert status == 200
        # Two more wait in line.
        callers.append(
            await place_call(pbx, SWITCHBOARD, caller_number="0700000073", hold_ms=40000)
        )
        third = await entered_stasis(observer, "0700000073", "the third call")
        callers.append(
            await place_call(pbx, SWITCHBOARD, caller_number="0700000074", hold_ms=40000)
        )
        fourth = await entered_stasis(observer, "0700000074", "the fourth call")
        assert await callers[0].wait(20) == 0
        await asyncio.sleep(1)  # the paused operator is free now, and offered nothing
        assert not _dialled(observer, f"PJSIP/{first_operator}", third)
        status, body = await api(
            "POST", f"/calls/{fourth}/answer", token, {"operator": first_operator}
        )
        assert status == 202, body
        answered = await observer.wait_for(
            lambda e: bool(_dialled(observer, f"PJSIP/{first_operator}", fourth)),
            10,
            "the paused operator answering the fourth caller",
        )
        [leg] = _dialled(observer, f"PJSIP/{first_operator}", fourth)
        await observer.wait_for(entered_bridge(f"{fourth}:bridge", leg), 5, "the leg bridged")
        assert answered
        assert not _dialled(observer, f"PJSIP/{first_operator}", third), "the third still waits"
        rows = await call_log(
            database, lambda rs: any(r["id"] == fourth and r["answered_by"] for r in rs)
        )
        [record] = [r for r in rows if r["id"] == fourth]
        assert record["answered_by"] == first_operator
    finally:
        for sipp in (*callers, *phones):
            await sipp.stop()


async def test_a_parked_caller_rings_the_operator_again_after_the_recall(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR, ("recall_s = 60", "recall_s = 5")))
    token = operator_token(database)
    operator = await start_phone(pbx, "1001", ring_ms=300)
    call = await place_call(pbx, SWITCHBOARD, caller_number="0700000081", hold_ms=30000)
    try:
        caller = await entered_stasis(observer, "0700000081", "the call")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
        status, body = await api("POST", f"/calls/{caller}/park", token)
        assert status == 202, body
        parked_at = asyncio.get_running_loop().time()
        [first] = _dialled(observer, "PJSIP/1001", caller)
        await observer.wait_for(
            lambda e: e.get("type") == "ChannelDestroyed" and e["channel"]["id"] == first,
            5,
            "the operator's phone hung up at the park",
        )
        await observer.wait_for(
            lambda e: len(_dialled(observer, "PJSIP/1001", caller)) == 2,
            15,
            "the recall answered",
        )
        waited = asyncio.get_running_loop().time() - parked_at
        assert waited >= 4.5, f"the recall came after {waited:.1f} s, not recall_s"
        second = _dialled(observer, "PJSIP/1001", caller)[1]
        await observer.wait_for(entered_bridge(f"{caller}:bridge", second), 5, "bridged again")
        rows = await call_log(database, lambda rs: any(r["id"] == caller for r in rs))
        assert any("[A3] parked by 1001" in line for line in rows[0]["trace"])
    finally:
        await call.stop()
        await operator.stop()


async def test_a_consultation_then_the_caller_is_bridged_with_1201(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    token = operator_token(database)
    operator = await start_phone(pbx, "1001", ring_ms=300)
    colleague = await start_phone(pbx, "1201", ring_ms=500)
    call = await place_call(pbx, SWITCHBOARD, caller_number="0700000091", hold_ms=12000)
    try:
        caller = await entered_stasis(observer, "0700000091", "the call")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
        [operator_leg] = _dialled(observer, "PJSIP/1001", caller)
        status, body = await api(
            "POST", f"/calls/{caller}/transfer", token, {"to": "1201", "consult": True}
        )
        assert status == 202, body
        await observer.wait_for(
            entered_bridge(f"{caller}:consult", operator_leg), 5, "the operator apart"
        )
        await observer.wait_for(dial("PJSIP/1201-", "ANSWER"), 10, "1201 answering the question")
        [asked] = _dialled(observer, "PJSIP/1201", caller)
        await observer.wait_for(entered_bridge(f"{caller}:consult", asked), 5, "1201 with them")
        status, body = await api("POST", f"/calls/{caller}/consult/complete", token)
        assert status == 202, body
        await observer.wait_for(
            entered_bridge(f"{caller}:bridge", asked), 5, "1201 with the caller"
        )
        await observer.wait_for(
            lambda e: e.get("type") == "ChannelDestroyed" and e["channel"]["id"] == operator_leg,
            5,
            "the operator's leg gone",
        )
        assert await call.wait(20) == 0
        rows = await call_log(
            database, lambda rs: any(r["id"] == caller and r["ended_at"] for r in rs)
        )
        [record] = [r for r in rows if r["id"] == caller]
        assert any("transferred by 1001 to 1201 after asking" in x for x in record["trace"])
        assert record["answered_by"] == "1001"
    finally:
        await call.stop()
        await operator.stop()
        await colleague.stop()
