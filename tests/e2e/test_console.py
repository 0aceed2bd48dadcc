"""The operator console and the wallboard in headless chromium, on real Asterisk (issue 11).

The operator works the page (clicks and keys); Asterisk's own events (the
observer) and the call log say what happened to the calls. The run saves
screenshots (``$VVK_SCREENSHOTS``, default ``var/screenshots/``) that
``docs/console.md`` shows.
"""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import Browser, expect

from tests.browser.harness import screenshot
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
    page_as,
    place_call,
    row,
    start_phone,
    vvk,
)

SWITCHBOARD = "012319100"
WAIT = re.compile(r"^\d+:\d\d$")  # m:ss


def _dialled(observer: Observer, endpoint: str, caller: str) -> list[str]:
    """The legs of ``caller``'s call that Asterisk dialled to ``endpoint`` and were answered."""
    return [
        e["peer"]["id"]
        for e in observer.matching(dial(f"{endpoint}-", "ANSWER"))
        if e["peer"]["id"].startswith(f"{caller}:")
    ]


def _gone(channel_id: str) -> object:
    return lambda e: e.get("type") == "ChannelDestroyed" and e["channel"]["id"] == channel_id


async def test_the_operator_picks_the_second_of_two_waiting_callers(
    pbx: Pbx, observer: Observer, controller: Controller, browser: Browser
) -> None:
    _, database = await controller(OPEN_AT)
    # 1001 answers first; 1002, slower, takes the second call.
    phones = [
        await start_phone(pbx, "1001", ring_ms=300),
        await start_phone(pbx, "1002", ring_ms=1500),
    ]
    callers = []
    try:
        async with page_as(browser, database, "1001", "/console") as tab:
            page = tab.page
            callers.append(
                await place_call(pbx, SWITCHBOARD, caller_number="0700000071", hold_ms=9000)
            )
            await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "1001 answering")
            callers.append(
                await place_call(pbx, SWITCHBOARD, caller_number="0700000072", hold_ms=40000)
            )
            await observer.wait_for(dial("PJSIP/1002-", "ANSWER"), 10, "1002 answering")
            await page.get_by_test_id("presence-paused").click()
            mine = row(page, "operator-row", extension="1001")
            await expect(mine).to_contain_text("Paus")
            # Two more wait in line, both on the console with their wait.
            callers.append(
                await place_call(pbx, SWITCHBOARD, caller_number="0700000073", hold_ms=40000)
            )
            third = await entered_stasis(observer, "0700000073", "the third call")
            callers.append(
                await place_call(pbx, SWITCHBOARD, caller_number="0700000074", hold_ms=40000)
            )
            fourth = await entered_stasis(observer, "0700000074", "the fourth call")
            for caller_id, number in ((third, "0700000073"), (fourth, "0700000074")):
                shown = row(page, "queue-row", call_id=caller_id)
                await expect(shown.get_by_test_id("caller")).to_have_text(number)
                await expect(shown).to_have_attribute("data-state", "waiting")
                await expect(shown.get_by_test_id("wait")).to_have_text(WAIT)
                await expect(shown.get_by_test_id("rings")).to_have_text(re.compile(r"ring \d/4"))
            await screenshot(page, "console-two-waiting")
            # 1001's caller hangs up: 1001 is free but paused, and is offered nothing.
            assert await callers[0].wait(20) == 0
            await expect(mine.get_by_test_id("operator-state")).to_have_text("Ledig")
            await asyncio.sleep(1)
            assert not _dialled(observer, "PJSIP/1001", third)
            await row(page, "queue-row", call_id=fourth).click()
            await page.get_by_test_id("answer").click()
            await observer.wait_for(
                lambda e: bool(_dialled(observer, "PJSIP/1001", fourth)),
                10,
                "1001 answering the fourth caller, picked on the console",
            )
            [leg] = _dialled(observer, "PJSIP/1001", fourth)
            await observer.wait_for(entered_bridge(f"{fourth}:bridge", leg), 5, "bridged")
            assert not _dialled(observer, "PJSIP/1001", third), "the third still waits"
            # The picked call asks the phone to answer by itself (phones that can).
            assert "answer-after=0" in phones[0].messages()
            await expect(row(page, "queue-row", call_id=fourth)).to_have_attribute(
                "data-state", "connected"
            )
        rows = await call_log(
            database, lambda rs: any(r["id"] == fourth and r["answered_by"] for r in rs)
        )
        [record] = [r for r in rows if r["id"] == fourth]
        assert record["answered_by"] == "1001"
    finally:
        for sipp in (*callers, *phones):
            await sipp.stop()


async def test_a_parked_caller_rings_the_operator_again_after_the_recall(
    pbx: Pbx, observer: Observer, controller: Controller, browser: Browser
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR, ("recall_s = 60", "recall_s = 5")))
    operator = await start_phone(pbx, "1001", ring_ms=300)
    call = await place_call(pbx, SWITCHBOARD, caller_number="0700000081", hold_ms=30000)
    try:
        async with page_as(browser, database, "1001", "/console") as tab:
            page = tab.page
            caller = await entered_stasis(observer, "0700000081", "the call")
            await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
            shown = row(page, "queue-row", call_id=caller)
            await expect(shown).to_have_attribute("data-state", "connected")
            await page.keyboard.press("p")  # parkera: the call the operator talks on
            parked_at = asyncio.get_running_loop().time()
            await expect(shown).to_have_attribute("data-state", "parked")
            await expect(shown.get_by_test_id("call-state")).to_contain_text("1001")
            [first] = _dialled(observer, "PJSIP/1001", caller)
            await observer.wait_for(_gone(first), 5, "the operator's phone hung up at the park")
            await observer.wait_for(
                lambda e: len(_dialled(observer, "PJSIP/1001", caller)) == 2,
                15,
                "the recall answered",
            )
            waited = asyncio.get_running_loop().time() - parked_at
            assert waited >= 4.5, f"the recall came after {waited:.1f} s, not recall_s"
            second = _dialled(observer, "PJSIP/1001", caller)[1]
            await observer.wait_for(entered_bridge(f"{caller}:bridge", second), 5, "bridged again")
            await expect(shown).to_have_attribute("data-state", "connected")
        rows = await call_log(database, lambda rs: any(r["id"] == caller for r in rs))
        assert any("[A3] parked by 1001" in line for line in rows[0]["trace"])
    finally:
        await call.stop()
        await operator.stop()


async def test_a_consultation_with_1201_then_the_caller_is_bridged_with_1201(
    pbx: Pbx, observer: Observer, controller: Controller, browser: Browser
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    operator = await start_phone(pbx, "1001", ring_ms=300)
    colleague = await start_phone(pbx, "1201", ring_ms=500)
    call = await place_call(pbx, SWITCHBOARD, caller_number="0700000091", hold_ms=15000)
    try:
        async with page_as(browser, database, "1001", "/console") as tab:
            page = tab.page
            caller = await entered_stasis(observer, "0700000091", "the call")
            await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
            [operator_leg] = _dialled(observer, "PJSIP/1001", caller)
            await page.get_by_test_id("search").fill("1201")
            person = row(page, "person-row", extension="1201")
            await expect(person).to_contain_text("Ledig")  # Asterisk's device state
            await person.click()
            await page.get_by_test_id("consult").click()
            await observer.wait_for(
                entered_bridge(f"{caller}:consult", operator_leg), 5, "the operator apart"
            )
            await observer.wait_for(dial("PJSIP/1201-", "ANSWER"), 10, "1201 answering")
            [asked] = _dialled(observer, "PJSIP/1201", caller)
            await observer.wait_for(entered_bridge(f"{caller}:consult", asked), 5, "1201 with them")
            shown = row(page, "queue-row", call_id=caller)
            await expect(shown).to_have_attribute("data-state", "consulting")
            await expect(page.get_by_test_id("person-info")).to_contain_text("Upptagen")
            await screenshot(page, "console-consulting")
            await page.get_by_test_id("complete").click()
            await observer.wait_for(
                entered_bridge(f"{caller}:bridge", asked), 5, "1201 with the caller"
            )
            await observer.wait_for(_gone(operator_leg), 5, "the operator's leg gone")
            await expect(shown.get_by_test_id("call-state")).to_contain_text("1201")
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


async def test_the_wallboard_and_console_follow_referrals_calls_and_messages(
    pbx: Pbx, observer: Observer, controller: Controller, browser: Browser
) -> None:
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    token = operator_token(database)
    # The operator's phone rings and is never answered: the caller gives up after 5 s.
    operator = await start_phone(pbx, "1001", ring_ms=86_400_000)
    try:
        async with (
            page_as(browser, database, "1203", "/wallboard") as board,
            page_as(browser, database, "1001", "/console") as console,
        ):
            # A referral set through the API: on both pages, without a reload, within 1 s.
            status, body = await api(
                "PUT",
                "/referrals/1101",
                token,
                {"reason": 2, "until": "2026-11-30T14:30", "note": "<b>Budget</b>"},
            )
            assert status == 201, body
            away = row(board.page, "referral-row", extension="1101")
            await expect(away).to_contain_text("14:30", timeout=1000)
            await console.page.get_by_test_id("search").fill("1101")
            await expect(row(console.page, "person-row", extension="1101")).to_contain_text(
                "14:30", timeout=1000
            )
            # A live call: on the wallboard while it rings, gone when it ends.
            call = await place_call(
                pbx, SWITCHBOARD, caller_number="0700000099", hold_ms=1000, cancel_ms=5000
            )
            caller = await entered_stasis(observer, "0700000099", "the call")
            waiting = row(board.page, "wait-row", call_id=caller)
            await expect(waiting).to_contain_text("0700000099")
            await expect(row(board.page, "operator-row", extension="1001")).to_contain_text(
                "Ringer"
            )
            await screenshot(board.page, "wallboard")
            await call.wait(20)
            await expect(waiting).to_have_count(0)
            # A message taken for 1101: in the ledger with its deadline and who took it.
            page = console.page
            await page.keyboard.press("Escape")  # out of the search field
            await page.keyboard.press("m")
            await page.get_by_test_id("message-to").select_option("1101")
            await page.get_by_test_id("message-caller").fill("0701234567")
            await page.get_by_test_id("message-name").fill("Karin <Ek>")
            await page.get_by_test_id("message-note").fill("Om bygglovet")
            await page.get_by_test_id("message-save").click()
            await expect(page.get_by_test_id("message-row")).to_contain_text("Karin <Ek>")
    finally:
        await operator.stop()
    [message] = json.loads(vvk(database, "callbacks", "--json"))
    assert (message["extension"], message["caller"], message["taken_by"]) == (
        "1101",
        "0701234567",
        "1001",
    )
    assert message["note"] == "Om bygglovet" and message["deadline"]
    table = vvk(database, "callbacks")
    assert "Om bygglovet" in table and "1001" in table and "Karin <Ek>" in table
