"""Phones as they are in production, on real Asterisk: registered (one not), busy, losing a race."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.e2e.conftest import PbxEnv
from tests.e2e.harness import (
    OPEN_AT,
    Controller,
    Observer,
    Pbx,
    calls_in,
    dial,
    entered_stasis,
    place_call,
    playback_started,
    played,
    register,
    start_phone,
)

SWITCHBOARD = "012319100"
REGISTERING = ('mode = "static"', 'mode = "register"')


Register = Callable[[str], Awaitable[None]]


@pytest.fixture
async def registered(pbx_env: PbxEnv) -> AsyncIterator[Register]:
    """Asterisk in register mode; the test registers the phones it wants (``await
    registered("1001")``), and every registration it made is removed afterwards."""
    with pbx_env.registering_phones() as passwords:
        made: list[str] = []

        async def make(extension: str) -> None:
            await register(pbx_env.pbx, extension, passwords[extension])
            made.append(extension)

        yield make
        for extension in made:
            await register(pbx_env.pbx, extension, passwords[extension], expires_s=0)


async def test_an_operator_who_is_not_registered_is_skipped_and_the_other_answers(
    pbx: Pbx, observer: Observer, controller: Controller, registered: Register
) -> None:
    _, database = await controller(OPEN_AT, edits=(REGISTERING,))
    await registered("1001")
    # 1002 is logged out: Asterisk cannot make its channel (500 "Allocation failed").
    operator = await start_phone(pbx, "1001", ring_ms=800)
    try:
        call = await place_call(pbx, SWITCHBOARD, caller_number="0700000061", hold_ms=1500)
        caller = await entered_stasis(observer, "0700000061", "the call")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 15, "1001 answering")
        assert await call.wait(20) == 0
        assert not observer.matching(
            lambda e: (
                e.get("type") == "ChannelDialplan"
                and e["channel"]["id"] == caller
                and str(e["channel"]["dialplan"]["context"]).startswith("vvk-fallback")
            )
        ), "the call never left for the fallback"
        [record] = await calls_in(database, lambda c: c["id"] == caller and c["ended_at"])
        assert (record["answered_by"], record["outcome"], record["rings"]) == (
            "1001",
            "answered",
            1,
        )
        statuses = {leg["endpoint"]: leg["status"] for leg in record["legs"]}  # type: ignore[union-attr]
        assert statuses == {"PJSIP/1001": "ANSWER", "PJSIP/1002": "CHANUNAVAIL"}
    finally:
        await operator.stop()


async def test_a_person_whose_phone_is_not_registered_gets_the_menu(
    pbx: Pbx, observer: Observer, controller: Controller, registered: Register
) -> None:
    await controller(OPEN_AT, edits=(REGISTERING,))
    call = await place_call(pbx, "0123191101", caller_number="0700000062", hold_ms=6000)
    caller = await entered_stasis(observer, "0700000062", "the call to 1101")
    await observer.wait_for(
        playback_started(caller, "sound:vvk/referral-menu"), 15, "the menu for 1101"
    )
    assert played(observer, caller)[:3] == [
        "sound:vvk/name-1101",
        "sound:vvk/not-answering",
        "sound:vvk/referral-menu",
    ]
    await call.wait(30)


async def test_the_phone_that_lost_the_race_is_told_the_call_was_answered_elsewhere(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT)
    slow = await start_phone(pbx, "1001", ring_ms=86_400_000)
    quick = await start_phone(pbx, "1002", ring_ms=700)
    try:
        call = await place_call(pbx, SWITCHBOARD, caller_number="0700000063", hold_ms=1000)
        caller = await entered_stasis(observer, "0700000063", "the call")
        await observer.wait_for(dial("PJSIP/1002-", "ANSWER"), 15, "1002 answering")
        assert await call.wait(20) == 0
        [record] = await calls_in(database, lambda c: c["id"] == caller and c["ended_at"])
        assert record["answered_by"] == "1002"
        # No missed call on 1001's desk phone: its CANCEL says why.
        cancel = _message(slow.messages(), "CANCEL sip:1001@")
        assert 'Reason: SIP;cause=200;text="Call completed elsewhere"' in cancel, cancel
    finally:
        await slow.stop()
        await quick.stop()


async def test_a_busy_operator_is_logged_busy_and_left_alone_for_a_while(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT)
    busy = await start_phone(pbx, "1001", busy=True)
    other = await start_phone(pbx, "1002", ring_ms=300)
    try:
        first = await place_call(pbx, SWITCHBOARD, caller_number="0700000064", hold_ms=800)
        first_id = await entered_stasis(observer, "0700000064", "the first call")
        await observer.wait_for(dial("PJSIP/1002-", "ANSWER"), 15, "1002 answering")
        assert await first.wait(20) == 0
        second = await place_call(pbx, SWITCHBOARD, caller_number="0700000065", hold_ms=800)
        second_id = await entered_stasis(observer, "0700000065", "the second call")
        await observer.wait_for(
            lambda e: dial("PJSIP/1002-", "ANSWER")(e) and e["peer"]["id"].startswith(second_id),
            15,
            "1002 answering the second call",
        )
        assert await second.wait(20) == 0
        # Asterisk's own account: the busy phone was rung for the first call only.
        rung_1001 = {
            e["peer"]["id"].split(":")[0]
            for e in observer.matching(
                lambda e: e.get("type") == "Dial" and e["peer"]["name"].startswith("PJSIP/1001-")
            )
        }
        assert rung_1001 == {first_id}
        [record] = await calls_in(database, lambda c: c["id"] == first_id and c["ended_at"])
        statuses = {leg["endpoint"]: leg["status"] for leg in record["legs"]}  # type: ignore[union-attr]
        assert statuses == {"PJSIP/1001": "BUSY", "PJSIP/1002": "ANSWER"}
    finally:
        await busy.stop()
        await other.stop()


def _message(log: str, start: str) -> str:
    """The SIP message in a SIPp message log that begins with ``start``."""
    found = re.search(re.escape(start) + r".*?(?:\n\s*\n|\Z)", log, re.S)
    return found[0] if found else log[-2000:]
