"""The browser tests' fixtures: one chromium per session, a fresh tab per test, and the
controller's real aiohttp app over the component rig (fake ARI, memory stores) on a
real localhost port. The launching itself is in ``harness.py``, for the e2e tests too.

Every test here runs in the session's event loop (``pytestmark`` in the modules), as
the browser does.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Generator

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser

from tests.browser.harness import Tab, launch, new_tab
from tests.component.test_calls import OPEN, Rig, make_rig
from tests.conftest import SAMPLE_CONFIG
from vvk_pbx.config import Settings
from vvk_pbx.config.loader import validate
from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.http.api import make_app

# Who logs in, with which PIN (set on the rig's PIN store).
PINS = {"1001": "2580", "1002": "1470", "1101": "4711", "1203": "3690"}
# A person whose name needs the folding: "asa" must find "Åsa".
ASA = {
    "name": "Åsa Öberg",
    "extension": "1304",
    "unit": "bygg-miljo",
    "title": "Miljöstrateg",
    "mobile": "070-123 13 04",
}


@pytest.fixture(scope="session")
def browser_settings() -> Settings:
    """The sample config with Åsa Öberg in the directory."""
    raw = tomllib.loads(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    raw["staff"].append(ASA)
    return validate(raw, f"{SAMPLE_CONFIG} (+ {ASA['name']})")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with launch() as one:
        yield one


@pytest_asyncio.fixture(loop_scope="session")
async def rig(browser_settings: Settings) -> AsyncIterator[Rig]:
    async for one in make_rig(browser_settings, OPEN):
        for extension, pin in PINS.items():
            one.pins.records[extension] = PinRecord.create(extension, pin)
        yield one


class Site:
    """The controller's web app over ``rig`` on 127.0.0.1; stopped and started again on
    the same port, as a controller restarts."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.port = 0
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = make_app(self.rig.services(), lambda: {"status": "ok", "ari_connected": True})
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        """The controller stops: every feed is cut, then nothing listens."""
        self.rig.services().live.close()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest_asyncio.fixture(loop_scope="session")
async def site(rig: Rig) -> AsyncIterator[Site]:
    one = Site(rig)
    await one.start()
    try:
        yield one
    finally:
        await one.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def tab(browser: Browser, site: Site, request: pytest.FixtureRequest) -> AsyncIterator[Tab]:
    """A fresh page on the site. The test fails if the page opened a dialog or raised a
    script error; a failed test leaves its screenshot (``harness.screenshots_dir``)."""
    async with new_tab(browser, site.url) as one:
        yield one
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            await one.screenshot(request.node.name)
        assert one.dialogs == [], f"the page opened dialogs: {one.dialogs}"
        assert one.errors == [], f"the page raised script errors: {one.errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def second_tab(browser: Browser, site: Site) -> AsyncIterator[Tab]:
    """Another browser (its own cookies) on the same site."""
    async with new_tab(browser, site.url) as one:
        yield one
        assert (one.dialogs, one.errors) == ([], [])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each phase's report on the item, for the ``tab`` fixture's screenshot of a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
