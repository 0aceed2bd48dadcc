"""The one place that wires config, storage, ARI, services and HTTP into the running controller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from vvk_pbx.ari.client import AriClient, AriConfig, AriError, EventStream, OrderedDispatcher
from vvk_pbx.ari.models import USED_EVENT_TYPES, DeviceStateChanged, Event
from vvk_pbx.asterisk.local import Layout, ari_password
from vvk_pbx.asterisk.prompts import PROMPT_DIR, catalogue
from vvk_pbx.asterisk.render import ChrootPaths
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.http.api import Services, make_app
from vvk_pbx.services import calls
from vvk_pbx.services.access import AccessService
from vvk_pbx.services.calls.controller import CallController, Item
from vvk_pbx.services.clock import SystemClock
from vvk_pbx.services.export import ExportService
from vvk_pbx.services.lines import LineStates
from vvk_pbx.services.live import LiveFeed
from vvk_pbx.services.metrics import Metrics
from vvk_pbx.services.reconciliation import Reconciliation
from vvk_pbx.services.recorder import Recorder
from vvk_pbx.services.retention import RetentionJob
from vvk_pbx.storage.access import AccessStore
from vvk_pbx.storage.audit import AuditLog
from vvk_pbx.storage.calllog import CallLog, StorageError, default_url
from vvk_pbx.storage.cdr import CDR_FILE, CdrFile
from vvk_pbx.storage.voicemail import MessageStore
from vvk_pbx.stores import publish_clock, referral_service

log = logging.getLogger("vvk_pbx")
# How often voicemail the ledger lacks is looked for in Asterisk's spool (seconds).
RECOVER_S = 60
# How often Asterisk's CDR file is read for the calls only the fallback handled
# (seconds): a call that ended just after a restart is in the log this soon.
CDR_S = 5
# How long a stopping controller waits for the call log's last writes (seconds).
SHUTDOWN_FLUSH_S = 10


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
    clock = SystemClock.as_if(clock_at)
    if clock.shifted:
        log.warning(
            "!!! SHIFTED CLOCK: the controller believes it is %s (real time %s); every "
            "decision follows the shifted clock, and so do the CLI and the API; call-log "
            "times stay Asterisk's own !!!",
            clock.now().astimezone(calendar.tz).isoformat(timespec="seconds"),
            clock.real().astimezone(calendar.tz).isoformat(timespec="seconds"),
        )
    store = await CallLog.open(database_url or default_url(layout.state))
    shared_clock = publish_clock(layout, clock)
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
    controller = calls.wire(ari, settings, calendar, referrals, recorder, clock)
    dispatcher: OrderedDispatcher[Item] = OrderedDispatcher(controller.handle, controller.key)
    controller.submit = dispatcher.submit  # posted events queue behind the call's own
    reconciliation = Reconciliation(
        ari, asterisk.app, controller, store, recorder, referrals, clock, CdrFile(cdr_file(layout))
    )
    lines = LineStates(ari, (ext for ext, _ in settings.extensions()))
    missing_prompts: list[str] = []
    background: set[asyncio.Task[None]] = set()

    def in_background(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        background.add(task)
        task.add_done_callback(background.discard)

    async def on_connect() -> None:
        # ARI only: the reconnect must never wait for, or fail with, the database.
        try:
            await ari.set_event_filter(USED_EVENT_TYPES)
        except AriError as exc:  # an older Asterisk: all events, still correct
            log.warning("ARI event filter not set: %s", exc)
        missing_prompts[:] = await check_prompts(ari, settings, calendar)
        await lines.resync()
        channels = await reconciliation.resync()
        in_background(reconciliation.follow_up(channels))

    stream = EventStream(ari, Events(dispatcher, lines), on_connect=on_connect)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def health() -> dict[str, object]:
        connected = stream.connected.is_set()
        status = "replaced" if stream.replaced.is_set() else "ok" if connected else "degraded"
        body: dict[str, object] = {
            "status": status,
            "ari_connected": connected,
            "calls": len(controller.registry),
            "waiting": len(controller.queue.waiting),
            "pending_writes": recorder.pending,
            "clock": clock.now().astimezone(calendar.tz).isoformat(timespec="seconds"),
            "clock_shifted": clock.shifted,
            "missing_prompts": missing_prompts,
        }
        if stream.replaced.is_set():
            body["problem"] = (
                f"another connection took the Stasis app {asterisk.app}: this controller "
                "handles no calls; stop the other one, then restart this one"
            )
        return body

    access = AccessService(AccessStore(store.engine), referrals, settings)
    exports = ExportService(store, AuditLog(store.engine), settings)
    feed = LiveFeed(controller, referrals, clock, lines, store)
    metrics = Metrics(settings.ring.cycle_ms, settings.ring.goal_rings)
    controller.on_ended = metrics.call_ended
    recorder.on_written = metrics.write.observe
    _watch(metrics, controller, stream, recorder, clock)
    controller.on_change = lines.on_change = feed.changed
    referrals.on_change = feed.referrals_changed
    services = Services(controller, store, referrals, access, clock, feed, exports, metrics)
    app = make_app(services, health)
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
                await reconciliation.follow_up()

    async def cdr_loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CDR_S)
            try:
                await reconciliation.import_fallback_calls()
            except Exception as exc:  # a database that is down: the lines wait
                log.warning("the fallback's calls from the CDR not logged yet: %s", exc)

    events = asyncio.create_task(stream.run())
    recovery = asyncio.create_task(follow_up_loop())
    cdr = asyncio.create_task(cdr_loop())
    board = asyncio.create_task(feed.run())
    lag = asyncio.create_task(metrics.watch_loop())
    retention = RetentionJob(
        settings.retention,
        store,
        MessageStore(store.engine),
        AuditLog(store.engine),
        ari.delete_recording,
    )
    sweeper = asyncio.create_task(retention.run(clock.now))  # one clock for every decision
    try:
        await stop.wait()
    finally:
        log.info("controller stopping")
        stream.stop()
        await events
        await recovery
        cdr.cancel()
        board.cancel()
        lag.cancel()
        sweeper.cancel()
        feed.close()  # the open pages' streams end, so the HTTP server can stop
        for task in background:  # a follow-up waiting for the database: the next run's
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await dispatcher.drain()
        try:
            await asyncio.wait_for(recorder.flush(), SHUTDOWN_FLUSH_S)
        except TimeoutError:
            log.error(
                "stopping with %d call-log write(s) unsaved: the database did not answer "
                "within %d s",
                recorder.pending,
                SHUTDOWN_FLUSH_S,
            )
        await runner.cleanup()
        await ari.close()
        await store.close()
        if shared_clock is not None:
            shared_clock.unlink(missing_ok=True)


def cdr_file(layout: Layout) -> Path:
    """Asterisk's CDR file (``dialplan/cdr_custom.conf``): ``$VVK_PBX_CDR_FILE`` (a
    container's shared log volume), else the local Asterisk's, in its rootfs."""
    explicit = os.environ.get("VVK_PBX_CDR_FILE")
    if explicit:
        return Path(explicit)
    return layout.inside(ChrootPaths().log) / "cdr-custom" / CDR_FILE


def _watch(
    metrics: Metrics,
    controller: CallController,
    stream: EventStream,
    recorder: Recorder,
    clock: SystemClock,
) -> None:
    """The gauges, read when scraped."""
    queue = controller.queue

    def longest_wait() -> float:
        if not queue.waiting:
            return 0.0
        first = min(w.arrived_at for w in queue.waiting.values())
        return max(0.0, (clock.now() - first).total_seconds())

    metrics.gauge(
        "vvk_queue_waiting", "Callers waiting for an operator", lambda: len(queue.waiting)
    )
    metrics.gauge("vvk_queue_longest_wait_seconds", "The longest wait in line now", longest_wait)
    metrics.gauge(
        "vvk_ari_connected", "1 while the ARI events socket is up", stream.connected.is_set
    )
    metrics.gauge(
        "vvk_ari_connects_total", "ARI connections made (1 + reconnects)", lambda: stream.connects
    )
    metrics.gauge("vvk_calllog_pending", "Call-log rows not yet written", lambda: recorder.pending)
    metrics.gauge("vvk_calls_in_progress", "Calls in progress", lambda: len(controller.registry))


class Events:
    """Where the ARI stream's events go: line states to ``lines``, the rest to the calls'
    dispatcher (device states are about no call)."""

    def __init__(self, dispatcher: OrderedDispatcher[Item], lines: LineStates) -> None:
        self.dispatcher = dispatcher
        self.lines = lines

    def submit(self, event: Event, /) -> None:
        if isinstance(event, DeviceStateChanged):
            self.lines.changed(event)
        else:
            self.dispatcher.submit(event)


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


__all__ = ["StorageError", "check_prompts", "log_setup", "run"]
