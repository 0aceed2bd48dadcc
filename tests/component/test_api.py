"""The HTTP API over the call controller and the referral service (S1, A5, R2–R6, V2):
who may call it, what it refuses and what it records.

Requests go through the real aiohttp application (``aiohttp.test_utils``); the
stores are the memory fakes, which pass the same contract tests as the databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.component.test_calls import (
    OPEN,
    Rig,
    answered_by_operator,
    created,
    dial,
    make_rig,
    stasis,
)
from vvk_pbx.config import Settings
from vvk_pbx.domain.access import Role
from vvk_pbx.domain.callflow.states import Connected
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.domain.referral import Source
from vvk_pbx.http import pages
from vvk_pbx.http.api import COOKIE, PUBLIC, make_app


@pytest.fixture
async def rig(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for one in make_rig(sample_settings, OPEN):
        yield one


@asynccontextmanager
async def api(
    rig: Rig, role: Role | None = None, name: str = "console"
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """A client of the API; with ``role``, it sends a new bearer token of that role."""
    services = rig.services()
    headers: dict[str, str] = {}
    if role is not None:
        secret = await services.access.create_token(name, role, rig.clock.now())
        headers["Authorization"] = f"Bearer {secret}"
    app = make_app(services, lambda: {"ari_connected": True})
    async with TestClient(TestServer(app), headers=headers) as client:
        yield client


async def login(client: TestClient, extension: str, pin: str) -> str:  # type: ignore[type-arg]
    """Log in as a person; the CSRF token their changes send."""
    response = await client.post("/login", json={"extension": extension, "pin": pin})
    assert response.status == 200, await response.text()
    csrf: str = (await response.json())["csrf"]
    return csrf


async def test_the_transfer_api_checks_then_transfers(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR) as client:
        response = await client.post("/calls/nope/transfer", json={"to": "1201"})
        assert (response.status, await response.json()) == (
            404,
            {"error": "not_found", "message": "no call nope in progress", "fields": []},
        )
        await rig.event(stasis("t1", OPEN, "inbound", "012319100"))
        response = await client.post("/calls/t1/transfer", json={"to": "1201"})
        assert response.status == 409  # still ringing the operators
        await rig.event(dial("t1:op1", "ANSWER", OPEN + timedelta(seconds=3)))
        for body, error, fields, reason in (
            ("{not json", "invalid_json", [], 'the body must be {"to": "<extension>"'),
            ("[1]", "invalid_body", [""], 'the body must be {"to": "<extension>"'),
            ('{"to": 1201}', "invalid_body", ["to"], "to: Input should be a valid string"),
            ('{"to": "1201", "when": "now"}', "invalid_body", ["when"], "when: unknown field"),
            ('{"to": "4711"}', "invalid_value", [], "'4711' is not an extension in the directory"),
        ):
            response = await client.post("/calls/t1/transfer", data=body)
            answer = await response.json()
            assert (response.status, answer["error"]) == (422, error), body
            assert [f["field"] for f in answer["fields"]] == fields and reason in answer["message"]
        assert rig.call("t1").state == Connected("t1:op1", "1001"), "refusals change nothing"
        response = await client.post("/calls/t1/transfer", json={"to": "1201"})
        assert (response.status, await response.json()) == (
            202,
            {"call": "t1", "to": "1201", "status": "transferring"},
        )
        await rig.dispatcher.drain()
        assert created(rig)[-1] == "t1:xfer3"
        await rig.recorder.flush()
        assert "[A5] transferred by 1001 to 1201 via the API" in rig.store.calls["t1"].trace


async def test_the_referral_and_ledger_api(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR) as client:
        response = await client.put(
            "/referrals/1101", json={"reason": 2, "until": "2026-11-30T14:30", "note": "Budget"}
        )
        assert response.status == 201, await response.text()
        body = await response.json()
        assert (body["phrase"], body["end"], body["source"], body["set_by"]) == (
            "är på möte",
            "2026-11-30T14:30:00+01:00",
            "api",
            "token:console",
        )
        assert [r["extension"] for r in await (await client.get("/referrals")).json()] == ["1101"]
        one = await client.get("/referrals/1101")
        assert (one.status, (await one.json())["note"]) == (200, "Budget")
        for path, reason in (
            ("/referrals/1102", "has no referral in force"),
            ("/referrals/1999", "not a staff extension"),
        ):
            response = await client.get(path)
            assert response.status == 404 and reason in (await response.json())["message"]
        for extension, payload, status, reason in (
            ("1999", {"reason": 2, "until": "2026-11-30T14:30"}, 404, "not a staff extension"),
            ("1101", {"reason": 42, "until": "2026-11-30T14:30"}, 422, "no reason code 42"),
            (
                "1101",
                {"reason": "2", "until": "2026-11-30T14:30"},
                422,
                "reason: Input should be a valid integer",
            ),
            ("1101", {"reason": 2, "until": "tomorrow"}, 422, "is not a time"),
            ("1101", {"reason": 2, "until": "2026-11-30T09:00"}, 422, "after the start"),
            ("1101", {"reason": 2, "until": "2026-11-30T14:30", "x": 1}, 422, "unknown field"),
            ("1101", {"reason": 2, "until": "2026-12-01"}, 422, "has no time of day"),
            ("1101", {"reason": 2, "until": "9999-12-31T23:59-05:00"}, 422, "not within"),
            (
                "1101",
                {"reason": 2, "from": "0001-01-01T00:30+01:00", "until": "2026-12-01T10:00"},
                422,
                "not within",
            ),
            (
                "1101",
                {"reason": 2, "until": "2026-12-01T10:00", "note": "a\x00b"},
                422,
                "printable",
            ),
        ):
            response = await client.put(f"/referrals/{extension}", json=payload)
            assert response.status == status, payload
            assert reason in (await response.json())["message"]
        response = await client.put("/referrals/1101", data="[1, 2]")
        assert response.status == 422
        assert (await (await client.delete("/referrals/1101")).json()) == {"cleared": True}
        [history] = await rig.referrals.history("1101")
        assert history.cleared_by == "token:console"
        assert (await (await client.delete("/referrals/1101")).json()) == {"cleared": False}
        assert (await client.delete("/referrals/1999")).status == 404

        await rig.service.message_left(
            "1101", "0701234567", "m1", OPEN - timedelta(days=7), 12.0, "vm-1101-m1"
        )
        ledger = await (await client.get("/messages?overdue=true")).json()
        assert [(m["id"], m["overdue"]) for m in ledger] == [("m1", True)]
        assert await (await client.get("/messages?unit=ifo")).json() == []
        assert (await client.get("/messages?unit=nope")).status == 422
        assert (await client.get("/messages?overdue=maybe")).status == 422
        response = await client.post("/messages/m1/called-back")
        marked = await response.json()
        assert (marked["status"], marked["called_back_by"]) == ("called_back", "token:console")
        assert await (await client.get("/messages?overdue=true")).json() == []
        response = await client.post("/messages/nope/called-back")
        assert (response.status, await response.json()) == (
            404,
            {"error": "not_found", "message": "no message nope", "fields": []},
        )
        response = await client.get("/no/such/route")
        assert response.status == 404 and "error" in await response.json()


async def test_the_api_refuses_deep_json_and_a_transfer_to_the_same_phone(rig: Rig) -> None:
    await answered_by_operator(rig)
    async with api(rig, Role.OPERATOR) as client:
        deep = "[" * 30000 + "]" * 30000
        response = await client.post("/calls/t1/transfer", data=deep)
        assert response.status == 422 and "error" in await response.json()
        response = await client.post("/calls/t1/transfer", json={"to": "1001"})
        assert (response.status, (await response.json())["message"]) == (
            409,
            "call t1 is already connected to 1001",
        )
        response = await client.post("/calls/t1/transfer", data="x" * 70000)
        assert response.status == 413 and "error" in await response.json()


async def test_every_route_but_the_public_ones_needs_a_login_or_a_token(rig: Rig) -> None:
    await rig.referrals.set("1101", 2, OPEN, OPEN + timedelta(hours=1), "1101", Source.PHONE)
    routes = {
        (route.method, route.resource.canonical)
        for route in make_app(rig.services(), dict).router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    private = {(m, path) for m, path in routes - PUBLIC if not pages.is_public(m, path)}
    assert len(private) >= 13, "every route the app has, as the app has them"
    async with api(rig) as client:
        for method, canonical in sorted(private):
            path = canonical.format(extension="1101", call_id="t1", message_id="m1", name="x")
            response = await client.request(method, path, json={"reason": 2, "to": "1201"})
            assert response.status == 401, (method, path)
            assert "log in" in (await response.json())["message"]
        for header in ("Bearer vvk_not-a-token", "Basic dnZrOnNlY3JldA==", "Bearer "):
            response = await client.get("/referrals", headers={"Authorization": header})
            assert response.status == 401, header
        response = await client.get("/referrals", cookies={COOKIE: "vvk_forged"})
        assert response.status == 401
        assert (await client.get("/health")).status == 200
        hours = await client.get("/hours")
        assert (hours.status, (await hours.json())["open"]) == (200, True)
    assert len(rig.referrals.referrals) == 1 and rig.referrals.referrals[0].cleared_at is None


async def test_a_person_logs_in_with_the_phones_pin_and_changes_only_their_own(
    rig: Rig,
) -> None:
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    await rig.service.message_left("1101", "0701", "m1", OPEN, 5.0, "vm-1101-m1")
    await rig.service.message_left("1201", "0702", "m2", OPEN, 5.0, "vm-1201-m2")
    async with api(rig) as client:
        csrf = await login(client, "1101", "4711")
        [cookie] = [c for c in client.session.cookie_jar if c.key == COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        me = await (await client.get("/me")).json()
        assert (me["who"], me["roles"]) == ("1101 Anna Berg", ["staff"])
        until = {"reason": 1, "until": "2026-11-30T13:00"}
        response = await client.put("/referrals/1101", json=until)
        assert response.status == 403 and "X-CSRF-Token" in (await response.json())["message"]
        assert rig.referrals.referrals == [], "no change without the CSRF token"
        headers = {"X-CSRF-Token": csrf}
        response = await client.put("/referrals/1101", json=until, headers=headers)
        assert (response.status, (await response.json())["set_by"]) == (201, "1101")
        for method, path in (("PUT", "/referrals/1102"), ("DELETE", "/referrals/1102")):
            response = await client.request(method, path, json=until, headers=headers)
            assert response.status == 403, path
            assert "their own referral only" in (await response.json())["message"]
        await answered_by_operator(rig)
        response = await client.post("/calls/t1/transfer", json={"to": "1201"}, headers=headers)
        assert (response.status, await response.json()) == (
            403,
            {"error": "forbidden", "message": "only an operator transfers calls", "fields": []},
        )
        assert [m["id"] for m in await (await client.get("/messages")).json()] == ["m1"]
        response = await client.post("/messages/m2/called-back", headers=headers)
        assert response.status == 403
        response = await client.post("/messages/m1/called-back", headers=headers)
        assert (await response.json())["called_back_by"] == "1101"
        response = await client.delete("/referrals/1101", headers=headers)
        assert await response.json() == {"cleared": True}
        assert (await client.post("/logout", headers=headers)).status == 200
        assert (await client.get("/me")).status == 401, "logged out"
    assert [m.status.value for m in rig.messages.messages] == ["called_back", "new"]


async def test_an_operator_logs_in_and_may_act_for_anyone(rig: Rig) -> None:
    rig.pins.records["1001"] = PinRecord.create("1001", "2580")
    async with api(rig) as client:
        csrf = await login(client, "1001", "2580")
        me = await (await client.get("/me")).json()
        assert (me["who"], me["roles"]) == ("1001 Växeln 1", ["operator"])
        response = await client.put(
            "/referrals/1102",
            json={"reason": 3, "until": "2026-11-30T16:00"},
            headers={"X-CSRF-Token": csrf},
        )
        assert (response.status, (await response.json())["set_by"]) == (201, "1001")


async def test_wrong_pins_lock_the_web_login_as_they_lock_the_phone(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    async with api(rig) as client:
        for attempt in ("1", "0000", "4712", "9999"):
            response = await client.post("/login", json={"extension": "1101", "pin": attempt})
            assert (response.status, await response.json()) == (
                401,
                {"error": "login_failed", "message": "wrong extension or PIN", "fields": []},
            )
        response = await client.post("/login", json={"extension": "1999", "pin": "4711"})
        assert (response.status, await response.json()) == (
            401,
            {"error": "login_failed", "message": "wrong extension or PIN", "fields": []},
        ), "an unknown extension is answered as a wrong PIN"
        response = await client.post("/login", json={"extension": "1101", "pin": "0001"})
        assert response.status == 423
        assert "1101 is locked until 2026-11-30T10:15" in (await response.json())["message"]
        response = await client.post("/login", json={"extension": "1101", "pin": "4711"})
        assert response.status == 423, "even the right PIN, for a while"
        assert "the last from phone the web login" in caplog.text
        for body in ('{"extension": 1101, "pin": "4711"}', "[]", "{not json"):
            response = await client.post("/login", data=body)
            assert response.status == 422, body
        rig.clock.advance(16 * 60)
        assert (await client.post("/login", json={"extension": "1101", "pin": "4711"})).ok
    # The phone sees the same lock: the PIN record is one.
    assert rig.pins.records["1101"].locked_until is None


async def test_a_session_ends_after_the_configured_hours(rig: Rig) -> None:
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    async with api(rig) as client:
        await login(client, "1101", "4711")
        rig.clock.advance(10 * 3600 - 60)
        assert (await client.get("/me")).status == 200
        rig.clock.advance(60)
        assert (await client.get("/me")).status == 401


async def test_a_reports_token_reads_everything_and_changes_nothing(rig: Rig) -> None:
    await rig.service.message_left("1101", "0701", "m1", OPEN, 5.0, "vm-1101-m1")
    await rig.service.message_left("1201", "0702", "m2", OPEN, 5.0, "vm-1201-m2")
    await answered_by_operator(rig)
    async with api(rig, Role.REPORTS, "intranet") as client:
        me = await (await client.get("/me")).json()
        assert (me["name"], me["roles"], me["csrf"]) == ("token:intranet", ["reports"], None)
        assert (await client.get("/referrals")).status == 200
        assert [m["id"] for m in await (await client.get("/messages")).json()] == ["m1", "m2"]
        for method, path in (
            ("PUT", "/referrals/1101"),
            ("DELETE", "/referrals/1101"),
            ("POST", "/messages/m1/called-back"),
            ("POST", "/calls/t1/transfer"),
        ):
            response = await client.request(
                method, path, json={"reason": 1, "until": "2026-11-30T13:00", "to": "1201"}
            )
            assert response.status == 403, (method, path)
    assert rig.referrals.referrals == []
    assert all(m.called_back_at is None for m in rig.messages.messages)


async def test_a_revoked_token_is_refused_at_once(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR, "old-console") as client:
        assert (await client.get("/referrals")).status == 200
        assert await rig.services().access.revoke("old-console", rig.clock.now())
        assert (await client.get("/referrals")).status == 401


async def test_only_an_admin_manages_tokens(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR) as client:
        for method, path in (("GET", "/tokens"), ("POST", "/tokens"), ("DELETE", "/tokens/x")):
            response = await client.request(method, path, json={"name": "x", "role": "admin"})
            assert (response.status, await response.json()) == (
                403,
                {"error": "forbidden", "message": "only an admin manages tokens", "fields": []},
            ), (method, path)
    rig.pins.records["1103"] = PinRecord.create("1103", "8642")  # [access] admins
    async with api(rig) as client:
        headers = {"X-CSRF-Token": await login(client, "1103", "8642")}
        response = await client.post(
            "/tokens", json={"name": "intranet", "role": "reports"}, headers=headers
        )
        assert response.status == 201
        secret = (await response.json())["token"]
        for body, status, reason in (
            ({"name": "intranet", "role": "reports"}, 409, "exists already"),
            ({"name": "x", "role": "boss"}, 422, "role: Input should be 'operator'"),
            ({"name": "x", "role": "staff"}, 422, "role: Input should be"),
            ({"name": "a b", "role": "admin"}, 422, "letters, digits"),
            ({"name": "x"}, 422, "the body must be"),
        ):
            response = await client.post("/tokens", json=body, headers=headers)
            assert response.status == status, body
            assert reason in (await response.json())["message"], body
        listed = await (await client.get("/tokens")).json()
        assert [(t["name"], t["role"]) for t in listed] == [
            ("console", "operator"),
            ("intranet", "reports"),
        ]
        assert secret not in str(listed)
    async with api(rig) as machine:
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await machine.get("/referrals", headers=bearer)).status == 200
    async with api(rig) as client:
        headers = {"X-CSRF-Token": await login(client, "1103", "8642")}
        response = await client.delete("/tokens/intranet", headers=headers)
        assert await response.json() == {"revoked": "intranet"}
        assert (await client.delete("/tokens/intranet", headers=headers)).status == 404
        assert (await client.get("/referrals", headers=bearer)).status == 401


async def test_the_call_log_is_read_by_operators_and_reports(rig: Rig) -> None:
    await answered_by_operator(rig, "c1")
    await answered_by_operator(rig, "c2")
    await rig.recorder.flush()
    async with api(rig, Role.REPORTS) as client:
        calls = await (await client.get("/calls")).json()
        assert [c["id"] for c in calls] == ["c1", "c2"], "today's calls by default"
        assert [leg["id"] for leg in calls[0]["legs"]] == ["c1:op1", "c1:op2"]
        assert calls[0]["answered_by"] == "1001"
        response = await client.get("/calls?since=2026-11-30T09:00&until=2026-11-30T10:00")
        assert await response.json() == [], "both arrived at 10:00"
        response = await client.get("/calls?since=2026-11-30T10:00%2B01:00")
        assert [c["id"] for c in await response.json()] == ["c1", "c2"]
        assert (await client.get("/calls?since=2026-12-01")).status == 200
        response = await client.get("/calls?since=yesterday")
        assert response.status == 422 and "is not a time" in (await response.json())["message"]
        assert await (await client.get("/calls?since=2026-12-01T00:00")).json() == []
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    async with api(rig) as client:
        await login(client, "1101", "4711")
        response = await client.get("/calls")
        assert (response.status, await response.json()) == (
            403,
            {
                "error": "forbidden",
                "message": "the call log is for operators and reports",
                "fields": [],
            },
        )


async def test_a_database_that_does_not_answer_is_503_and_changes_nothing(rig: Rig) -> None:
    async with api(rig, Role.OPERATOR) as client:
        rig.referrals.fail = 1
        response = await client.get("/referrals")
        assert response.status == 503
        assert "the database is not answering" in (await response.json())["message"]
        rig.referrals.fail = 1
        response = await client.put(
            "/referrals/1101", json={"reason": 2, "until": "2026-11-30T14:30"}
        )
        assert response.status == 503
        assert rig.referrals.referrals == []
        response = await client.put(
            "/referrals/1101", json={"reason": 2, "until": "2026-11-30T14:30"}
        )
        assert response.status == 201, "the next try works"


async def test_the_pages_are_served_without_a_login_and_hold_no_data(rig: Rig) -> None:
    async with api(rig) as client:
        for path in pages.PAGES:
            response = await client.get(path)
            assert response.status == 200, path
            assert response.content_type == "text/html"
        for outside in ("/static/../api.py", "/static/%2e%2e/api.py", "/static/"):
            response = await client.get(outside)
            assert response.status in (401, 403, 404), outside
