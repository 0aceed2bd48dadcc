"""A real Asterisk 22 for the whole test session, and an observer app for each test.

The tests own the local Asterisk while they run: any instance started with
``vvk-pbx asterisk up`` is stopped first and the test instance is stopped at
the end. Asterisk reads the real clock, so tests choose open or closed by
re-rendering the fallback around the current time (``set_overrides``), never
by waiting for an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser

from tests.browser.harness import launch
from tests.conftest import ROOT, SAMPLE_CONFIG
from tests.e2e.harness import (
    CONTROLLER_API,
    VVK,
    Controller,
    DnsSink,
    Observer,
    Pbx,
    make_dtmf_pcaps,
)
from vvk_pbx.asterisk import local
from vvk_pbx.asterisk.render import ChrootPaths
from vvk_pbx.config import Settings, load
from vvk_pbx.config.model import Overrides
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.storage.cdr import CDR_FILE


@dataclass
class PbxEnv:
    settings: Settings
    layout: local.Layout
    pbx: Pbx
    dns: DnsSink

    def set_overrides(self, overrides: Overrides) -> Settings:
        """Re-render the fallback with these overrides and reload Asterisk's dialplan."""
        return self.render(self.settings.model_copy(update={"overrides": overrides}))

    def render(self, settings: Settings) -> Settings:
        """Re-render Asterisk's config for these settings and reload the dialplan."""
        calendar = Calendar(settings.hours_policy())
        local.reload_dialplan(settings, calendar, self.layout, datetime.now(settings.site.tz))
        return settings

    @contextlib.contextmanager
    def registering_phones(self) -> Iterator[dict[str, str]]:
        """Asterisk with ``[asterisk.phones] mode = "register"``, as in production: each
        phone registers with its generated password (yielded, by extension); static
        phones again afterwards."""
        phones = self.settings.asterisk.phones.model_copy(update={"mode": "register"})
        asterisk = self.settings.asterisk.model_copy(update={"phones": phones})
        registering = self.settings.model_copy(update={"asterisk": asterisk})
        calendar = Calendar(registering.hours_policy())
        now = datetime.now(registering.site.tz)
        local.install_config(registering, calendar, self.layout, now, lambda _: None)
        local.cli(self.layout, "core reload")
        try:
            yield local.phone_secrets(registering, self.layout)
        finally:
            local.install_config(self.settings, calendar, self.layout, now, lambda _: None)
            local.cli(self.layout, "core reload")

    @property
    def log_dir(self) -> Path:
        return self.layout.inside(local.CHROOT.log)


@pytest.fixture(scope="session")
def pbx_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PbxEnv]:
    for tool in ("sipp", "debootstrap", "espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} is missing: run ./scripts/setup"
    settings = load(SAMPLE_CONFIG)
    layout = local.Layout.default()
    stop_demo()
    local.down(layout, print)
    dns = DnsSink()  # before Asterisk starts, so its start-up lookups count too
    calendar = Calendar(settings.hours_policy())
    local.up(settings, calendar, layout, datetime.now(settings.site.tz), print)
    pbx = Pbx(
        ari_port=settings.asterisk.ari_port,
        ari_user=settings.asterisk.ari_user,
        ari_password=local.ari_password(layout),
        sip_port=settings.asterisk.sip_port,
        app=settings.asterisk.app,
        port_offset=settings.asterisk.phones.port_offset,
        log_dir=tmp_path_factory.mktemp("sipp"),
        dtmf_dir=make_dtmf_pcaps(layout.cache / "dtmf"),
    )
    try:
        yield PbxEnv(settings, layout, pbx, dns)
    finally:
        local.down(layout, print)
        dns.close()


def stop_demo() -> None:
    """Stop what ./scripts/run leaves running: its SIPp phones hold the test phones'
    ports, and its controller would take the Stasis app the tests need free."""
    for pidfile in [*(ROOT / "var" / "phones").glob("*.pid"), ROOT / "var" / "controller.pid"]:
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            if _is_demo_process(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")):
                os.kill(pid, signal.SIGTERM)
        pidfile.unlink(missing_ok=True)


def _is_demo_process(cmdline: list[bytes]) -> bool:
    # A pid file may be stale: only signal a sipp or a `vvk-pbx run`.
    is_sipp = cmdline[0].endswith(b"sipp")
    is_controller = (b"run" in cmdline or b"supervise" in cmdline) and any(
        part.endswith((b"vvk-pbx", b"vvk_pbx")) for part in cmdline
    )
    return is_sipp or is_controller


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless chromium for the test (``tests/browser/harness.py``)."""
    async with launch() as one:
        yield one


@pytest.fixture
def pbx(pbx_env: PbxEnv) -> Pbx:
    return pbx_env.pbx


@pytest.fixture
async def observer(pbx: Pbx) -> AsyncIterator[Observer]:
    obs = Observer(pbx)
    await obs.start()
    try:
        yield obs
    finally:
        await obs.stop()


@pytest.fixture
async def controller(pbx_env: PbxEnv, tmp_path: Path) -> AsyncIterator[Controller]:
    """Start `vvk-pbx run` with a shifted clock and (optionally) a short ring cadence."""
    started: list[subprocess.Popen[bytes]] = []
    # Each test has a database of its own: the CDR lines of earlier tests' calls
    # (which their controllers logged) must not come into it as fallback calls.
    cdr = pbx_env.layout.inside(ChrootPaths().log) / "cdr-custom" / CDR_FILE
    if cdr.exists():
        cdr.write_text("")
    await hang_up_everything(pbx_env.pbx)

    async def start(
        clock: str,
        tone_ms: int = 1000,
        pause_ms: int = 5000,
        edits: tuple[tuple[str, str], ...] = (),
        supervised: bool = False,
    ) -> tuple[subprocess.Popen[bytes], str]:
        text = SAMPLE_CONFIG.read_text(encoding="utf-8")
        for old, new in (
            ("tone_ms = 1000", f"tone_ms = {tone_ms}"),
            ("pause_ms = 5000", f"pause_ms = {pause_ms}"),
            *edits,
        ):
            assert old in text, old
            text = text.replace(old, new, 1)
        config = tmp_path / "site.toml"
        config.write_text(text, encoding="utf-8")
        database = f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"
        log = (tmp_path / "controller.log").open("ab")
        # Supervised: `vvk-pbx supervise` runs the controller and writes its pid to
        # controller.pid (tmp_path), as scripts/run does.
        command = [VVK, "supervise", "--pid-file", str(tmp_path / "controller.pid")]
        process = subprocess.Popen(
            [
                *(command if supervised else [VVK, "run"]),
                "--config",
                str(config),
                "--clock",
                clock,
                "--health-port",
                CONTROLLER_API.rsplit(":", 1)[1],
                "--database",
                database,
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        await wait_healthy(process, tmp_path / "controller.log")
        return process, database

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def hang_up_everything(pbx: Pbx, timeout: float = 10) -> None:
    """No channel and no bridge left from an earlier test: a restarted controller adopts
    what talks in a bridge of ours (issue 13), and a SIPp process stopped without a BYE
    leaves its channel up (no RTP timeout here)."""
    async with aiohttp.ClientSession(headers=pbx.auth_header()) as session:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with session.get(pbx.rest_url("channels")) as response:
                channels = await response.json()
            async with session.get(pbx.rest_url("bridges")) as response:
                bridges = await response.json()
            if not channels and not bridges:
                return
            for channel in channels:
                async with session.delete(pbx.rest_url(f"channels/{channel['id']}")):
                    pass
            for bridge in bridges:
                async with session.delete(pbx.rest_url(f"bridges/{bridge['id']}")):
                    pass
            assert asyncio.get_running_loop().time() < deadline, f"left over: {channels} {bridges}"
            await asyncio.sleep(0.2)


async def wait_healthy(
    process: subprocess.Popen[bytes], log: Path, timeout: float = 20
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            assert process.poll() is None, (
                f"vvk-pbx run exited: {log.read_text(errors='replace')[-2000:]}"
            )
            try:
                async with session.get(f"{CONTROLLER_API}/health") as response:
                    body: dict[str, object] = await response.json()
                    if response.status == 200 and body["ari_connected"]:
                        return body
            except aiohttp.ClientError:
                pass
            assert loop.time() < deadline, (
                f"controller not healthy: {log.read_text(errors='replace')[-2000:]}"
            )
            await asyncio.sleep(0.1)
