"""The whole controller (``bootstrap.run``) against the fake ARI server: health, the one
clock it shares with the CLI, resync without the database, another process taking the app."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from tests.component.fake_ari import FakeAri
from tests.conftest import SAMPLE_CONFIG, STHLM
from tests.sse import next_event
from vvk_pbx import bootstrap
from vvk_pbx import stores as stores_module
from vvk_pbx.asterisk.local import Layout
from vvk_pbx.config import Settings, load
from vvk_pbx.domain.access import Role


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Running:
    fake: FakeAri
    layout: Layout
    url: str
    database: Path

    async def health(self) -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/health") as r:
            body: dict[str, object] = await r.json()
            return r.status, body


@pytest.fixture
async def running(
    sample_settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[Running, asyncio.Event, asyncio.Task[None]]]:
    fake = FakeAri()
    await fake.start()
    layout = Layout(tmp_path / "cache", tmp_path / "state")
    layout.state.mkdir(parents=True)
    layout.password_file.write_text(fake.password + "\n")
    asterisk = sample_settings.asterisk.model_copy(update={"ari_port": fake.port})
    settings = sample_settings.model_copy(update={"asterisk": asterisk})
    port, stop = _free_port(), asyncio.Event()
    database = tmp_path / "calls.sqlite3"
    clock_at = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)
    task = asyncio.create_task(bootstrap.run(settings, layout, clock_at, port, str(database), stop))
    handle = Running(fake, layout, f"http://127.0.0.1:{port}", database)
    try:
        await fake.wait_connected(1)
        for _ in range(100):
            try:
                if (await handle.health())[0] == 200:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        yield handle, stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)  # a database that is down: 10 s for the last writes
        await fake.stop()


async def test_health_and_the_shared_clock(
    running: tuple[Running, asyncio.Event, asyncio.Task[None]],
) -> None:
    handle, stop, task = running
    status, body = await handle.health()
    assert status == 200 and body["status"] == "ok"
    assert body["clock_shifted"] is True and str(body["clock"]).startswith("2026-11-30T10:0")
    # The CLI reads the shift; it is gone when the controller stops.
    shared = json.loads(handle.layout.clock_file.read_text())
    assert shared["offset_s"] < 0
    assert handle.layout.clock_file.stat().st_mode & 0o077 == 0
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not handle.layout.clock_file.exists()


async def test_another_process_taking_the_app_is_reported_in_health(
    running: tuple[Running, asyncio.Event, asyncio.Task[None]],
) -> None:
    handle, _, _ = running
    await handle.fake.send_event({"type": "ApplicationReplaced", "application": "vvk-pbx"})
    for _ in range(100):
        status, body = await handle.health()
        if status == 503:
            break
        await asyncio.sleep(0.05)
    assert status == 503 and body["status"] == "replaced"
    assert "another connection took the Stasis app vvk-pbx" in str(body["problem"])


async def test_a_reconnect_needs_no_database_and_calls_go_on(
    running: tuple[Running, asyncio.Event, asyncio.Task[None]],
) -> None:
    handle, _, _ = running
    handle.database.unlink()  # the database is gone: the follow-up fails, nothing else
    for suffix in ("-wal", "-shm"):
        Path(f"{handle.database}{suffix}").unlink(missing_ok=True)
    # Asterisk lists a caller another process left in our app: it goes to the
    # fallback, and its call-log row cannot be read now.
    handle.fake.channels = [
        {
            "id": "orphan",
            "name": "PJSIP/trunk-orphan",
            "dialplan": {"app_name": "Stasis", "app_data": "vvk-pbx,inbound,012319100"},
        }
    ]
    await handle.fake.drop_connections()
    await handle.fake.wait_connected(2)
    for _ in range(100):
        status, body = await handle.health()
        if status == 200:
            break
        await asyncio.sleep(0.05)
    assert (status, body["ari_connected"]) == (200, True)
    assert any(r.path == "channels/orphan/continue" for r in handle.fake.requests("POST"))
    handle.fake.reset()
    await handle.fake.send_event(
        {
            "type": "StasisStart",
            "timestamp": "2026-12-01T20:00:00.000+0000",
            "args": ["inbound", "012319100"],
            "channel": {"id": "n1", "name": "PJSIP/trunk-n1", "caller": {"number": "0701"}},
        }
    )
    for _ in range(100):
        if any(r.path == "channels/create" for r in handle.fake.requests("POST")):
            break
        await asyncio.sleep(0.05)
    assert [
        r.query["endpoint"] for r in handle.fake.requests("POST") if r.path == "channels/create"
    ] == [
        "PJSIP/1001",
        "PJSIP/1002",
    ], "the switchboard is open on the shifted clock: the operators ring"


async def test_the_phones_line_states_are_followed_from_each_connect(
    running: tuple[Running, asyncio.Event, asyncio.Task[None]],
) -> None:
    handle, _, _ = running
    [subscribed] = [r for r in handle.fake.requests("POST") if r.path.endswith("/subscription")]
    sources = subscribed.query["eventSource"].split(",")
    assert "deviceState:PJSIP/1101" in sources and "deviceState:PJSIP/1001" in sources
    assert any(r.path == "deviceStates/PJSIP/1101" for r in handle.fake.requests("GET"))
    # After a reconnect the states are read anew, and changes follow.
    handle.fake.device_states["PJSIP/1101"] = "INUSE"
    await handle.fake.drop_connections()
    await handle.fake.wait_connected(2)
    token = await _operator_token(handle)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{handle.url}/events") as response,
    ):
        name, snapshot = await next_event(response)
        assert name == "snapshot"
        lines = snapshot["lines"]
        if lines.get("1101") != "busy":  # the reconnect's read may come after the snapshot
            lines = await _lines_until(response, lambda ls: ls.get("1101") == "busy")
        assert lines["1102"] == "unknown"
        await handle.fake.send_event(
            {
                "type": "DeviceStateChanged",
                "application": "vvk-pbx",
                "device_state": {"name": "PJSIP/1101", "state": "RINGING"},
            }
        )
        lines = await _lines_until(response, lambda ls: ls.get("1101") == "ringing")
        assert lines["1001"] == "unknown"


async def _lines_until(
    response: aiohttp.ClientResponse, predicate: Callable[[dict[str, str]], bool]
) -> dict[str, str]:
    while True:
        name, message = await asyncio.wait_for(next_event(response), 5)
        if name == "change" and message["section"] == "lines" and predicate(message["data"]):
            found: dict[str, str] = message["data"]
            return found


async def _operator_token(handle: Running) -> str:
    """An operator's bearer token in the running controller's database, as the CLI makes one."""
    settings = load(SAMPLE_CONFIG)
    async with stores_module.open_stores(settings, handle.layout, str(handle.database)) as stores:
        return await stores.access.create_token("console", Role.OPERATOR, datetime.now(STHLM))
