"""The console, the wallboard and the phone book in a real headless chromium, over the
controller's real web app and live feed (fake ARI, memory stores): the login and its
lock, callers' names shown as text, referrals live on every page, the diacritic-blind
search, the feed-lost banner, and what the console's keys send."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, Request, Route, expect

from tests.browser.conftest import PINS, Site
from tests.browser.harness import Tab
from tests.component.test_calls import OPEN, Rig, stasis
from tests.conftest import SAMPLE_CONFIG
from vvk_pbx.config import load
from vvk_pbx.domain import routing
from vvk_pbx.domain.access import Role
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.domain.dialcodes import CodeError, Problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

NASTY = "<img src=x onerror=alert(1)>"
LOST = "Förbindelsen med växeln är bruten – försöker igen…"


async def log_in(page: Page, path: str, extension: str) -> None:
    await page.goto(path)
    await page.get_by_test_id("login-extension").fill(extension)
    await page.get_by_test_id("login-pin").fill(PINS[extension])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("who")).to_contain_text(extension)


async def live(page: Page) -> None:
    """Wait for the first snapshot of the feed."""
    await expect(page.get_by_test_id("queue-empty")).to_have_text("Inga samtal just nu.")


def row(page: Page, testid: str, **data: str) -> Any:
    attrs = "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in data.items())
    return page.locator(f'[data-testid="{testid}"]{attrs}')


async def test_the_console_asks_for_a_login_then_shows_the_live_queue(tab: Tab) -> None:
    page = tab.page
    await page.goto("/console")
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("queue")).to_be_hidden()
    await log_in(page, "/console", "1001")
    await expect(page.get_by_test_id("who")).to_have_text("1001 Växeln 1")
    await live(page)
    await expect(row(page, "operator-row", extension="1002")).to_contain_text("Ledig")
    await page.reload()
    await expect(page.get_by_test_id("who")).to_have_text("1001 Växeln 1")  # the cookie stays
    await page.get_by_test_id("logout").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("queue")).to_be_hidden()


async def test_five_wrong_pins_lock_the_login_and_the_page_says_so(tab: Tab, rig: Rig) -> None:
    page = tab.page
    status = page.get_by_test_id("status")
    await page.goto("/phonebook")
    for pin in ("1", "0000", "4712", "9999", "0001", PINS["1101"]):
        await page.get_by_test_id("login-extension").fill("1101")
        await page.get_by_test_id("login-pin").fill(pin)
        async with page.expect_response("**/login") as answer:
            await page.get_by_test_id("login-submit").click()
        if (await answer.value).status == 401:
            await expect(status).to_have_text("Fel PIN-kod (eller okänd anknytning)")
        else:
            assert (await answer.value).status == 423, pin
            await expect(status).to_have_text(
                "Låst efter för många fel PIN-koder, även på telefonen. Försök igen om en kvart."
            )
    # One lock: the phone's mailbox refuses the right PIN too (V1, S1).
    with pytest.raises(CodeError) as refused:
        await rig.service.open_mailbox("1101", PINS["1101"], rig.clock.now())
    assert refused.value.problem is Problem.LOCKED
    await expect(page.get_by_test_id("login-form")).to_be_visible()  # even the right PIN


async def test_a_callers_name_is_shown_as_text_and_never_run(
    tab: Tab, second_tab: Tab, rig: Rig
) -> None:
    console, wallboard = tab.page, second_tab.page
    await log_in(console, "/console", "1001")
    await log_in(wallboard, "/wallboard", "1203")
    await live(console)
    channel: dict[str, Any] = {"id": "x1", "name": "PJSIP/trunk-x1", "state": "Ring"}
    channel["caller"] = {"number": NASTY, "name": NASTY}
    await rig.event({**stasis("x1", OPEN, "inbound", "012319100"), "channel": channel})
    queued = row(console, "queue-row", call_id="x1")
    await expect(queued.get_by_test_id("caller")).to_have_text(NASTY)
    await expect(row(wallboard, "wait-row", call_id="x1")).to_contain_text(NASTY)
    for page in (console, wallboard):
        assert await page.locator("main img").count() == 0
    await queued.click()
    await console.get_by_test_id("message").click()
    await expect(console.get_by_test_id("message-caller")).to_have_value(NASTY)
    # The dialogs (none) and script errors (none) are checked by the tab fixtures.


async def test_a_referral_set_through_the_api_shows_on_console_and_wallboard_at_once(
    tab: Tab, second_tab: Tab, site: Site, rig: Rig
) -> None:
    console, wallboard = tab.page, second_tab.page
    await log_in(console, "/console", "1001")
    await log_in(wallboard, "/wallboard", "1203")
    await live(console)
    await expect(wallboard.get_by_test_id("hours")).to_have_text("Öppet")
    await console.get_by_test_id("search").fill("anna berg")
    anna = row(console, "person-row", extension="1101")
    await expect(anna).to_have_count(1)
    await expect(anna.get_by_test_id("referral")).to_have_count(0)
    secret = await rig.services().access.create_token("intranet", Role.OPERATOR, rig.clock.now())
    bearer = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(site.url, headers=bearer) as http:
        body = {"reason": 2, "until": "2026-11-30T14:30"}
        async with http.put("/referrals/1101", json=body) as response:
            assert response.status == 201, await response.text()
        await expect(anna.get_by_test_id("referral")).to_contain_text(
            "är på möte, åter", timeout=1000
        )
        await expect(anna.get_by_test_id("referral")).to_contain_text("14:30")
        board = row(wallboard, "referral-row", extension="1101")
        await expect(board).to_contain_text("Anna Berg", timeout=1000)
        await expect(board).to_contain_text("är på möte")
        await second_tab.screenshot("wallboard")
        async with http.delete("/referrals/1101") as response:
            assert response.status == 200
        await expect(anna.get_by_test_id("referral")).to_have_count(0, timeout=1000)
        await expect(board).to_have_count(0, timeout=1000)


async def test_the_operator_sets_and_clears_a_referral_from_the_console(tab: Tab, rig: Rig) -> None:
    page = tab.page
    await log_in(page, "/console", "1001")
    await live(page)
    await page.get_by_test_id("search").fill("erik")
    await row(page, "person-row", extension="1102").click()
    await expect(page.get_by_test_id("target")).to_have_text("Koppla till: Erik Lindqvist (1102)")
    await page.get_by_test_id("referral-reason").select_option("3")
    await page.get_by_test_id("referral-until").fill("2026-11-30T16:00")
    await page.get_by_test_id("referral-set").click()
    await expect(page.get_by_test_id("status")).to_have_text("Hänvisning satt för Erik Lindqvist")
    referral = row(page, "person-row", extension="1102").get_by_test_id("referral")
    await expect(referral).to_contain_text("är sjuk, åter")
    [set_] = rig.referrals.referrals
    assert (set_.extension, set_.reason, set_.set_by) == ("1102", 3, "1001")
    await page.get_by_test_id("referral-until").fill("2026-11-30T09:00")
    await page.get_by_test_id("referral-set").click()
    await expect(page.get_by_test_id("status")).to_contain_text("Misslyckades: ")
    await expect(page.get_by_test_id("status")).to_contain_text("after the start")
    await page.get_by_test_id("referral-clear").click()
    await expect(referral).to_have_count(0)


async def test_the_search_finds_asa_in_any_case_and_without_the_ring(tab: Tab) -> None:
    page = tab.page
    await log_in(page, "/phonebook", "1101")
    search = page.get_by_test_id("search")
    people = page.get_by_test_id("person-row")
    for query, found in (("asa", ["1304"]), ("ÅSA öberg", ["1304"]), ("akesson", ["1301"])):
        await search.fill(query)
        await expect(people).to_have_count(len(found))
        assert [await p.get_attribute("data-extension") for p in await people.all()] == found
    await search.fill("miljo")
    await expect(people).to_have_count(4)  # the unit "Bygg och miljö" and a title
    await expect(people.first).to_contain_text("Bygg och miljö")
    await page.goto("/console")  # the same session: a person's
    await expect(page.get_by_test_id("status")).to_have_text(
        "Konsolen är för telefonister: logga ut och in med en telefonists anknytning."
    )
    await page.get_by_test_id("logout").click()
    await page.get_by_test_id("login-extension").fill("1001")
    await page.get_by_test_id("login-pin").fill(PINS["1001"])
    await page.get_by_test_id("login-submit").click()
    await live(page)
    await page.keyboard.press("/")
    await expect(page.get_by_test_id("search")).to_be_focused()
    await page.keyboard.type("asa")
    await expect(page.get_by_test_id("person-row")).to_have_text(
        ["Åsa Öberg1304Miljöstrateg, Bygg och miljö"]
    )


async def test_a_person_sets_their_referral_and_marks_a_message_called_back(
    tab: Tab, rig: Rig
) -> None:
    await rig.service.message_left("1101", "0701234567", "m1", OPEN, 12.0, "vm-1101-m1")
    page = tab.page
    await log_in(page, "/phonebook", "1101")
    await expect(page.get_by_test_id("my-referral")).to_have_text(
        "Ingen hänvisning: din telefon är öppen."
    )
    message = row(page, "message-row", message_id="m1")
    await expect(message).to_contain_text("0701234567")
    await page.get_by_test_id("referral-reason").select_option("1")
    await page.get_by_test_id("referral-until").fill("2026-11-30T13:00")
    await page.get_by_test_id("referral-set").click()
    await expect(page.get_by_test_id("my-referral")).to_contain_text("Du är på lunch, åter")
    await tab.screenshot("phonebook")
    await message.get_by_test_id("called-back").click()
    await expect(message).to_have_count(0)
    assert rig.messages.messages[0].called_back_by == "1101"
    await page.get_by_test_id("referral-clear").click()
    await expect(page.get_by_test_id("my-referral")).to_contain_text("Ingen hänvisning")


async def test_the_feed_lost_banner_shows_while_the_controller_is_away(
    tab: Tab, site: Site, rig: Rig
) -> None:
    page = tab.page
    await log_in(page, "/console", "1001")
    await live(page)
    await expect(page.get_by_test_id("feed-lost")).to_be_hidden()
    await rig.event(stasis("c1", OPEN, "inbound", "012319100", number="0701234567"))
    await expect(row(page, "queue-row", call_id="c1")).to_be_visible()
    await site.stop()
    await expect(page.get_by_test_id("feed-lost")).to_have_text(LOST)
    await expect(page.get_by_test_id("feed-lost")).to_be_visible()
    await expect(page.get_by_test_id("queue-row")).to_have_count(0)  # no stale queue
    await expect(page.get_by_test_id("queue-empty")).to_contain_text("Ingen förbindelse")
    await expect(page.get_by_test_id("answer")).to_be_disabled()
    await tab.screenshot("console-feed-lost")
    await site.start()
    await expect(page.get_by_test_id("feed-lost")).to_be_hidden(timeout=8000)
    await expect(row(page, "queue-row", call_id="c1")).to_be_visible()


async def test_the_console_keys_send_the_actions_with_the_csrf_token(tab: Tab, rig: Rig) -> None:
    page = tab.page
    sent: list[tuple[str, str, Any, str | None]] = []

    async def record(route: Route, request: Request) -> None:
        body = json.loads(request.post_data) if request.post_data else None
        path = request.url.split("://", 1)[1].split("/", 1)[1]
        sent.append((request.method, "/" + path, body, request.headers.get("x-csrf-token")))
        await route.fulfill(status=202, json={"ok": True})

    patterns = ("**/calls/*/*", "**/calls/*/consult/*", "**/messages", "**/operators/*/*")
    for pattern in (*patterns, "**/referrals/*"):
        await page.route(pattern, record)
    await log_in(page, "/console", "1001")
    await live(page)
    await rig.event(stasis("c1", OPEN, "inbound", "012319100", number="0701234567"))
    await expect(row(page, "queue-row", call_id="c1")).to_be_visible()
    await page.get_by_test_id("search").fill("karin")
    await page.keyboard.press("Enter")  # in the search: the first person is the target
    await expect(page.get_by_test_id("target")).to_have_text("Koppla till: Karin Holm (1201)")
    await page.keyboard.press("Escape")  # leaves the search
    await page.keyboard.press("ArrowDown")
    await expect(row(page, "queue-row", call_id="c1")).to_have_attribute("aria-selected", "true")
    for key in ("Enter", "p", "k", "f"):
        await page.keyboard.press(key)
    await page.keyboard.press("F9")  # paus
    await page.keyboard.press("h")  # the chosen person's referral form
    await expect(page.get_by_test_id("referral-reason")).to_be_focused()
    await page.keyboard.press("Escape")
    await page.keyboard.press("Delete")  # opens their phone
    await page.keyboard.press("m")
    await expect(page.get_by_test_id("message-form")).to_be_visible()
    await expect(page.get_by_test_id("message-to")).to_have_value("1201")
    await tab.screenshot("console")
    await page.get_by_test_id("message-name").fill("Bo Ek")
    await page.get_by_test_id("message-note").fill("Ring om bygglovet")
    await page.get_by_test_id("message-save").click()
    await expect(page.get_by_test_id("message-form")).to_be_hidden()
    csrf = {token for *_, token in sent}
    assert len(csrf) == 1 and None not in csrf, sent
    assert [(method, path, body) for method, path, body, _ in sent] == [
        ("POST", "/calls/c1/answer", None),
        ("POST", "/calls/c1/park", None),
        ("POST", "/calls/c1/transfer", {"to": "1201"}),
        ("POST", "/calls/c1/transfer", {"to": "1201", "consult": True}),
        ("POST", "/operators/1001/presence", {"presence": "paused"}),
        ("DELETE", "/referrals/1201", None),
        (
            "POST",
            "/messages",
            {
                "extension": "1201",
                "caller": "0701234567",
                "name": "Bo Ek",
                "note": "Ring om bygglovet",
                "call": "c1",
            },
        ),
    ]


async def test_the_wallboard_counts_rings_on_the_servers_clock_and_shows_today(
    tab: Tab, rig: Rig
) -> None:
    await rig.event(stasis("c1", OPEN, "inbound", "012319100", number="0701111111"))
    await rig.event(stasis("c2", OPEN + timedelta(seconds=15), "inbound", "012319100"))
    rig.clock.advance(19)
    # Today so far: nine answered within four rings, one late, two who gave up.
    for n in range(12):
        record = CallRecord.arrive(f"d{n}", "0702", "012319100", OPEN, _queued())
        if n < 10:
            rings_s = 10 if n < 9 else 30
            record = record.answered(OPEN + timedelta(seconds=rings_s), "1001", 6000, 4)
            record = record.ended(OPEN + timedelta(minutes=2))
        else:
            record = record.ended(OPEN + timedelta(seconds=40), Outcome.ABANDONED)
        rig.store.calls[record.id] = record
    page = tab.page
    await log_in(page, "/wallboard", "1203")
    await expect(page.get_by_test_id("waiting-count")).to_have_text("2")
    await expect(page.get_by_test_id("longest-wait")).to_have_text(re.compile(r"0:(19|2\d)"))
    first, second = row(page, "wait-row", call_id="c1"), row(page, "wait-row", call_id="c2")
    await expect(first.get_by_test_id("rings")).to_have_text("ring 4/4")  # 19 s, 6 s a ring
    await expect(first).to_have_class("late")
    await expect(second.get_by_test_id("rings")).to_have_text("ring 1/4")
    await expect(second).to_have_class("ok")
    await expect(page.get_by_test_id("share")).to_have_text("75 %")  # 9 of 12
    await expect(page.get_by_test_id("abandoned")).to_have_text("2")
    await tab.screenshot("wallboard-queue")


def _queued() -> routing.Route:
    """The route of a call to the switchboard in open hours (the operator queue)."""
    settings = load(SAMPLE_CONFIG)
    calendar = Calendar(settings.hours_policy())
    return routing.route(
        routing.CallKind.INBOUND, "0702", "012319100", OPEN, calendar, settings.numbering()
    )


async def test_the_monthly_report_shows_in_chromium_with_nothing_fetched(
    tab: Tab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.component.test_report import NOW, SETTINGS, month_of_calls
    from tests.fakes import MemoryMessages, MemoryStore
    from vvk_pbx.services.report import build, render

    records, messages = month_of_calls()
    store, ledger = MemoryStore(), MemoryMessages()
    store.calls = {r.id: r for r in records}
    ledger.messages = list(messages)
    page_html = render(await build("2026-11", store, ledger, SETTINGS, NOW), SETTINGS)
    requests: list[str] = []
    tab.page.on("request", lambda request: requests.append(request.url))
    await tab.page.set_content(page_html)
    await expect(tab.page.locator("h1")).to_have_text("Uppföljning av telefonin – 2026-11")
    assert await tab.page.locator("svg.chart").count() == 5
    assert requests == [], "self-contained: nothing fetched"
    await tab.screenshot("report")
