"""A throwaway PostgreSQL cluster for the component tests (Debian's postgresql package)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes import (
    MemoryAccess,
    MemoryAudit,
    MemoryMessages,
    MemoryPins,
    MemoryReferrals,
    MemoryStore,
)
from vvk_pbx.services.access import AccessPort
from vvk_pbx.services.referrals import MessagePort, PinPort, ReferralPort
from vvk_pbx.storage.access import AccessStore
from vvk_pbx.storage.audit import AuditLog
from vvk_pbx.storage.calllog import CallLog
from vvk_pbx.storage.pins import PinStore
from vvk_pbx.storage.referrals import ReferralStore
from vvk_pbx.storage.tables import metadata
from vvk_pbx.storage.voicemail import MessageStore


def _free_tcp_port() -> int:
    # Not a fixed port: two test runs on one machine must not collide.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert versions, "PostgreSQL is not installed: run ./scripts/setup"
    return versions[-1].parent


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+asyncpg://`` URL of a fresh cluster on a free 127.0.0.1 port, removed afterwards."""
    bindir = _pg_bin()
    port = _free_tcp_port()
    home = Path(tempfile.mkdtemp(prefix="vvk-pg-"))
    data = home / "data"
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "vvk", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(home / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "vvk",
                    "vvk",
                ]
            ),
            check=True,
            capture_output=True,
        )
        yield f"postgresql+asyncpg://vvk@127.0.0.1:{port}/vvk"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


@asynccontextmanager
async def _database(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[CallLog]:
    """The database, migrated: SQLite in ``tmp_path``, or the session's PostgreSQL,
    whose tables are emptied afterwards."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    log = await CallLog.open(url)
    try:
        yield log
    finally:
        if kind == "postgresql":
            tables = ", ".join(t.name for t in metadata.sorted_tables)
            async with log.engine.begin() as connection:
                await connection.exec_driver_sql(f"TRUNCATE {tables}")
        await log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def call_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CallLog]:
    """The call log, once on SQLite and once on PostgreSQL."""
    async with _database(request.param, request, tmp_path) as log:
        yield log


@dataclass
class Stores:
    """The referral and access services' ports and the call log's, in one backend."""

    referrals: ReferralPort
    messages: MessagePort
    pins: PinPort
    access: AccessPort
    calls: CallLog | MemoryStore  # the recorder's and the API's port of the call log
    audit: AuditLog | MemoryAudit


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """The stores in memory (the component tests' fakes) and in both databases: the
    same contract tests hold for all three."""
    if request.param == "memory":
        yield Stores(
            MemoryReferrals(),
            MemoryMessages(),
            MemoryPins(),
            MemoryAccess(),
            MemoryStore(),
            MemoryAudit(),
        )
        return
    async with _database(request.param, request, tmp_path) as log:
        engine = log.engine
        yield Stores(
            ReferralStore(engine),
            MessageStore(engine),
            PinStore(engine),
            AccessStore(engine),
            log,
            AuditLog(engine),
        )
