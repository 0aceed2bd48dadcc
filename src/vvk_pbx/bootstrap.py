"""The one place that wires config, storage, ARI, services and HTTP into the running controller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from vvk_pbx.ari.client import AriClient, AriConfig, AriError, EventStream, OrderedDispatcher
from vvk_pbx.ari.models import USED_EVENT_TYPES, Channel
from vvk_pbx.asterisk.local import Layout, ari_password
from vvk_pbx.asterisk.prompts import PROMPT_DIR, catalogue
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.http.api import make_app
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.referrals import ReferralService
from vvk_pbx.services.switchboard import Switchboard
from vvk_pbx.storage.calllog import CallLog, StorageError, default_url
from vvk_pbx.storage.pins import PinStore
from vvk_pbx.storage.referrals import ReferralStore
from vvk_pbx.storage.voicemail import MessageStore

log = logging.getLogger("vvk_pbx")
# How often voicemail the ledger lacks is looked for in Asterisk's spool (seconds).
RECOVER_S = 60


@dataclass
class Stores:
    """The database as a one-shot command (the CLI) uses it: the call log, and the
    referral service over the same database (referrals, ledger, PINs)."""

    calls: CallLog
    referrals: ReferralService


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
        yield Stores(store, referral_service(store, settings, Calendar(settings.hours_policy())))
    finally:
        await store.close()


def shifted_clock(at: datetime | None) -> Callable[[], datetime]:
    """The controller's clock: real time, or real time shifted so that now is ``at`` (demos, tests)."""
    if at is None:
        return lambda: datetime.now(UTC)
    offset = at - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


async def run(
    settings: Settings,
    layout: Layout,
    clock_at: datetime | None = None,
    health_port: int = 8089,
    database_url: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the controller until ``stop`` is set or SIGINT/SIGTERM arrives."""
    calendar = Calendar(settings.hours_policy())
    clock = shifted_clock(clock_at)
    if clock_at is not None:
        log.warning(
            "!!! SHIFTED CLOCK: the controller believes it is %s (real time %s); "
            "routing follows the shifted clock, call times stay Asterisk's own !!!",
            clock().astimezone(calendar.tz).isoformat(timespec="seconds"),
            datetime.now(calendar.tz).isoformat(timespec="seconds"),
        )
    store = await CallLog.open(database_url or default_url(layout.state))
    recorder = Recorder(store)
    asterisk = settings.asterisk
    ari = AriClient(
        AriConfig(
            f"http://127.0.0.1:{asterisk.ari_port}",
            asterisk.ari_user,
            ari_password(layout),
            asterisk.app,
        )
    )
    referrals = referral_service(store, settings, calendar)
    switchboard = Switchboard(ari, recorder, settings, calendar, clock, referrals)
    dispatcher = OrderedDispatcher(switchboard.handle, key=switchboard.key)
    switchboard.post = dispatcher.submit  # internal events queue behind the call's own

    missing_prompts: list[str] = []

    async def on_connect() -> None:
        try:
            await ari.set_event_filter(USED_EVENT_TYPES)
        except AriError as exc:  # an older Asterisk: all events, still correct
            log.warning("ARI event filter not set: %s", exc)
        missing_prompts[:] = await check_prompts(ari, settings, calendar)
        channels = await ari.list_channels()
        await switchboard.resync(channels, asterisk.app, store.get_call)
        await follow_up(channels)

    async def follow_up(channels: list[Channel] | None = None) -> None:
        # Calls and messages that ended while no controller followed them: the log
        # gets its ends, the ledger its messages (A1, V2). Never fatal.
        try:
            live = channels if channels is not None else await ari.list_channels()
            switchboard.close_orphans((c.id for c in live), await store.open_calls())
        except (AriError, StorageError, SQLAlchemyError) as exc:
            log.warning("follow-up of ended calls failed: %s", exc)
        await switchboard.recover_messages(store.get_call)

    stream = EventStream(ari, dispatcher, on_connect=on_connect)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def health() -> dict[str, object]:
        return {
            "status": "ok" if stream.connected.is_set() else "degraded",
            "ari_connected": stream.connected.is_set(),
            "calls": len(switchboard.calls),
            "waiting": len(switchboard.waiting),
            "pending_writes": recorder.pending,
            "clock": clock().astimezone(calendar.tz).isoformat(timespec="seconds"),
            "clock_shifted": clock_at is not None,
            "missing_prompts": missing_prompts,
        }

    app = make_app(switchboard, health)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", health_port).start()
    log.info(
        "controller up: app %s, API and health on http://127.0.0.1:%d/health",
        asterisk.app,
        health_port,
    )

    async def follow_up_loop() -> None:
        # A message whose ledger write failed is in the spool; add it once the
        # database answers again (V2: no message may be lost to the ledger).
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECOVER_S)
            if stream.connected.is_set() and not stop.is_set():
                await follow_up()

    events = asyncio.create_task(stream.run())
    recovery = asyncio.create_task(follow_up_loop())
    try:
        await stop.wait()
    finally:
        log.info("controller stopping")
        stream.stop()
        await events
        await recovery
        await dispatcher.drain()
        await recorder.flush()
        await runner.cleanup()
        await ari.close()
        await store.close()


async def check_prompts(ari: AriClient, settings: Settings, calendar: Calendar) -> list[str]:
    """The prompts of the catalogue that Asterisk does not have, sorted, with a warning
    in the log: after the directory or the reasons change, callers would hear
    nothing where a name or a reason belongs until ``vvk-pbx asterisk up`` (or
    ``sounds build``) runs again (issue 5). An unreadable catalogue or a failed ARI request is logged and
    gives an empty list: the check must never keep the controller from calls."""
    try:
        wanted = set(catalogue(settings, calendar))
        have = await ari.sound_ids(PROMPT_DIR)
    except (RuntimeError, AriError) as exc:
        log.warning("cannot check the prompts: %s", exc)
        return []
    missing = sorted(wanted - have)
    if missing:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        log.warning(
            "%d prompt(s) missing in Asterisk (%s): callers hear silence there. After "
            "changing the directory or the reasons, run `vvk-pbx asterisk up` again (or "
            "scripts/run): it gives new people their phone and their spoken name",
            len(missing),
            shown,
        )
    return missing


def log_setup(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


__all__ = [
    "StorageError",
    "Stores",
    "check_prompts",
    "log_setup",
    "open_stores",
    "referral_service",
    "run",
    "shifted_clock",
]
