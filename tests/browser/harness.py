"""Debian's chromium, headless, driven by Playwright's async API: for the browser tests
and the end-to-end ones.

Nothing is downloaded at run time (no ``playwright install``): the browser is the
``chromium`` package from ``packages/debian.txt``. A page records the dialogs it
opened and the script errors it raised, so a test can assert there were none.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, async_playwright

from tests.conftest import ROOT

SCREENSHOTS_ENV = "VVK_SCREENSHOTS"
DEFAULT_SCREENSHOTS = ROOT / "var" / "screenshots"
TIMEOUT_MS = 5_000  # a page that shows nothing in 5 s has failed; keeps a failing run short


def chromium_path() -> str:
    """Debian's chromium, or the test fails (never skips): the browser tests must run."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        pytest.fail("Debian's chromium is not installed: run ./scripts/setup", pytrace=False)
    return found


@asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    """One headless chromium (``--no-sandbox`` as root: its sandbox refuses root)."""
    # Swedish date and time fields, as on an operator's machine; no sandbox as root.
    args = ["--lang=sv-SE", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=args
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """A page with what it did that a test must see: dialogs opened, script errors."""

    page: Page
    context: BrowserContext
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def screenshot(self, name: str) -> Path:
        return await screenshot(self.page, name)


@asynccontextmanager
async def new_tab(browser: Browser, base_url: str | None = None) -> AsyncIterator[Tab]:
    """A fresh context (no cookies) and page, Swedish and in the site's zone."""
    context = await browser.new_context(
        base_url=base_url, locale="sv-SE", timezone_id="Europe/Stockholm"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    tab = Tab(page, context)

    async def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    try:
        yield tab
    finally:
        await context.close()


def screenshots_dir() -> Path:
    """``$VVK_SCREENSHOTS``, else ``var/screenshots/`` in the repository; created."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else DEFAULT_SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(page: Page, name: str) -> Path:
    """The whole page as ``<dir>/<name>.png``; the path."""
    path = screenshots_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
