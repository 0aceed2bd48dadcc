"""The OpenAPI document against the app (issue 12): every route the app serves is in
``/openapi.json`` and nothing else is; and schemathesis, generating requests from the
document, valid and invalid, with every kind of caller (each token role, a staff
member's session, a wrong token, none), finds no 500, no status the document does
not give, and no answer that does not fit its schema.

The app runs over the component rig (fake ARI, memory stores, with a call talking,
one waiting, a referral and a message in the ledger) on a real localhost port in
its own thread, since schemathesis sends its requests synchronously.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient, TestServer
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.browser.conftest import PINS, Site
from tests.component.test_calls import OPEN, dial, make_rig, stasis
from tests.conftest import SAMPLE_CONFIG
from vvk_pbx import __version__
from vvk_pbx.config.loader import load
from vvk_pbx.domain.access import Role
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.domain.referral import Source
from vvk_pbx.http import openapi
from vvk_pbx.http.api import all_routes, make_app

DOCUMENT = openapi.document(all_routes(), __version__)
schema = schemathesis.openapi.from_dict(DOCUMENT)
# The live feed never ends by design; tests/component/test_live.py covers it.
schema = schema.exclude(path="/events")
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=25,
    deterministic=True,  # the same requests on every run: CI never flakes on luck
)


@dataclass
class Server:
    """The app on a port, in a thread with its own event loop; the credentials made."""

    url: str = ""
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by the fixture, never lost in a thread
            self.failure = exc
            self.ready.set()

    async def _serve(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        async for rig in make_rig(load(SAMPLE_CONFIG), OPEN):
            for extension, pin in PINS.items():
                rig.pins.records[extension] = PinRecord.create(extension, pin)
            # Something to answer about: a call talking, one waiting, a referral, a message.
            await rig.event(stasis("t1", OPEN, "inbound", "012319100", name="Karin <Ek>"))
            await rig.event(dial("t1:op1", "ANSWER", OPEN + timedelta(seconds=3)))
            await rig.event(stasis("w1", OPEN, "inbound", "012319100", number="0700000001"))
            await rig.service.set_referral(
                "1101", 2, OPEN, OPEN + timedelta(hours=2), "1101", Source.API, "Budget"
            )
            await rig.service.message_taken("1101", "0701234567", "Anna", "", "1001", OPEN)
            await rig.recorder.flush()
            services = rig.services()
            for role in (Role.ADMIN, Role.OPERATOR, Role.REPORTS):
                secret = await services.access.create_token(f"fuzz-{role.value}", role, OPEN)
                self.headers[role.value] = {"Authorization": f"Bearer {secret}"}
            self.headers["wrong token"] = {"Authorization": "Bearer vvk_not-a-token"}
            self.headers["nobody"] = {}
            site = Site(rig)
            await site.start()
            self.url = site.url
            self.ready.set()
            await self.stop.wait()
            await site.stop()

    def close(self) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    one = Server()
    thread = threading.Thread(target=one.run, daemon=True)
    thread.start()
    assert one.ready.wait(30), "the app did not start"
    if one.failure is not None:
        raise one.failure
    # A staff member's session: a cookie, and the CSRF token their changes send.
    login = requests.post(f"{one.url}/login", json={"extension": "1101", "pin": "4711"}, timeout=10)
    assert login.status_code == 200, login.text
    one.headers["staff session"] = {"X-CSRF-Token": login.json()["csrf"]}
    one.cookies["staff session"] = dict(login.cookies)
    try:
        yield one
    finally:
        one.close()
        thread.join(10)


async def test_the_document_describes_every_route_the_app_serves() -> None:
    async for rig in make_rig(load(SAMPLE_CONFIG), OPEN):
        router = make_app(rig.services(), dict).router
        served = set()
        for route in router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            served.add((route.method, str(info.get("path") or info.get("formatter"))))
    documented = {
        (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
    }
    assert served == documented
    assert len(documented) == 36  # 31 API routes, 4 pages and their files
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert operation["summary"] and operation["responses"], (method, path)
            if "requestBody" in operation:  # every body is a model with its refusals
                assert "422" in operation["responses"], (method, path)


async def test_the_app_serves_its_document() -> None:
    async for rig in make_rig(load(SAMPLE_CONFIG), OPEN):
        app = make_app(rig.services(), dict)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/openapi.json")  # public: no login
            assert response.status == 200
            assert await response.json() == DOCUMENT


CALLERS = ("admin", "operator", "reports", "staff session", "wrong token", "nobody")


@pytest.mark.parametrize("caller", CALLERS)
@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_no_request_breaks_the_api(case: Any, caller: str, server: Server) -> None:
    response = case.call(
        base_url=server.url,
        headers=server.headers[caller],
        cookies=server.cookies.get(caller, {}),
        timeout=10,
    )
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )
