"""The database and the clock as a one-shot command (the CLI) opens them.

Apart from ``bootstrap`` on purpose: a command such as ``vvk-pbx calls export``
needs none of the controller's ARI client, HTTP app or call flows, and their
imports cost it a quarter of a second (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from pathlib import Path

from vvk_pbx.asterisk.local import Layout
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.services.access import AccessService
from vvk_pbx.services.clock import SystemClock
from vvk_pbx.services.export import ExportService
from vvk_pbx.services.referrals import ReferralService
from vvk_pbx.storage.access import AccessStore
from vvk_pbx.storage.audit import AuditLog
from vvk_pbx.storage.calllog import CallLog, StorageError, default_url
from vvk_pbx.storage.pins import PinStore
from vvk_pbx.storage.referrals import ReferralStore
from vvk_pbx.storage.voicemail import MessageStore

__all__ = [
    "StorageError",
    "Stores",
    "cli_clock",
    "open_stores",
    "publish_clock",
    "referral_service",
]


@dataclass
class Stores:
    """The database as a one-shot command (the CLI) uses it: the call log, and the
    referral and access services over the same database (referrals, ledger, PINs,
    tokens, sessions)."""

    calls: CallLog
    referrals: ReferralService
    access: AccessService
    exports: ExportService


def referral_service(store: CallLog, settings: Settings, calendar: Calendar) -> ReferralService:
    """The referral service over the call log's database (one database holds every table)."""
    return ReferralService(
        ReferralStore(store.engine),
        MessageStore(store.engine),
        PinStore(store.engine),
        settings,
        calendar,
    )


@asynccontextmanager
async def open_stores(
    settings: Settings, layout: Layout, database_url: str | None, create: bool = True
) -> AsyncIterator[Stores]:
    """Open the database (``database_url``, else ``$VVK_PBX_DATABASE_URL``, else SQLite in
    the state directory), migrated to the newest schema, and close it on exit.
    ``create`` False: a SQLite file that is not there is an error (reports).
    Raises ``StorageError``."""
    store = await CallLog.open(database_url or default_url(layout.state), create)
    try:
        referrals = referral_service(store, settings, Calendar(settings.hours_policy()))
        access = AccessService(AccessStore(store.engine), referrals, settings)
        exports = ExportService(store, AuditLog(store.engine), settings)
        yield Stores(store, referrals, access, exports)
    finally:
        await store.close()


def publish_clock(layout: Layout, clock: SystemClock) -> Path | None:
    """Let the CLI on this machine share a running controller's shifted clock
    (``cli_clock``): its offset and pid in the state directory, mode 0600. Nothing for
    an unshifted clock; an older file is removed. Returns the file written."""
    path = layout.clock_file
    path.unlink(missing_ok=True)
    if not clock.shifted:
        return None
    layout.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"offset_s": clock.offset.total_seconds(), "pid": os.getpid()}, out)
    return path


def cli_clock(layout: Layout, tz: tzinfo | None = None) -> tuple[SystemClock, str | None]:
    """The clock of a one-shot command: the running controller's (shifted by its
    ``--clock``, so ``referrals list`` sees what callers hear), else the real one.
    Returns the clock and, when shifted, a line that says so (times in ``tz``)."""
    try:
        shared = json.loads(layout.clock_file.read_text(encoding="utf-8"))
        offset, pid = float(shared["offset_s"]), int(shared["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return SystemClock(), None
    if not _is_controller(pid):
        return SystemClock(), None  # a controller that died: its shift is gone with it
    clock = SystemClock(timedelta(seconds=offset))
    note = (
        f"clock shifted as the running controller's (vvk-pbx run --clock, pid {pid}): "
        f"now is {clock.now().astimezone(tz).isoformat(timespec='minutes')}"
    )
    return clock, note


def _is_controller(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # `vvk-pbx run`, or `python -m vvk_pbx run` as the supervisor starts it.
    return b"run" in cmdline and any(part.endswith((b"vvk-pbx", b"vvk_pbx")) for part in cmdline)
