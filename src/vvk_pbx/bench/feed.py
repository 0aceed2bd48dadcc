"""``vvk-pbx bench-feed``: how long a call's arrival takes from Asterisk to open consoles.

The local Asterisk, ``operators`` SIPp phones that answer at once and a fresh
``vvk-pbx run`` (at an instant when the switchboard is open), as ``vvk-pbx
bench`` sets them up (``run.py``). ``consoles`` pages of ``/console`` are
open in one headless chromium (Debian's, driven by Playwright: a dev
dependency, ``./scripts/setup`` installs both), each logged in with an
operator's bearer token. Then SIPp calls the switchboard at ``rate`` calls/s.

For every call and every console: the latency is the instant the page's
script received the first ``change`` of the feed that shows the call
(``performance.timeOrigin + performance.now()`` in the page) minus
Asterisk's own timestamp of the call's ``StasisStart`` (the ``arrived_at``
the feed carries). Both clocks are this machine's. A call missing from a
console (cut off and reconnected, say) counts as missed. A benchmark, never
a timed test.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vvk_pbx.asterisk import local
from vvk_pbx.bench.run import (
    HEALTH_PORT,
    BenchError,
    _place_calls,
    _processes,
    _start_controller,
    _start_phones,
    _stop,
    machine,
    prepare,
)
from vvk_pbx.bench.wire import percentile_nearest_rank
from vvk_pbx.domain.routing import digits

Log = Callable[[str], None]

# Injected into every console before its own script: note when each call first
# reaches the page in a change of the feed. The page's own handlers are untouched.
RECORDER = """
window.__arrivals = {};
(() => {
  const Original = window.EventSource;
  function Recording(url, options) {
    const source = new Original(url, options);
    source.addEventListener("change", (event) => {
      const at = performance.timeOrigin + performance.now();
      const message = JSON.parse(event.data);
      if (message.section !== "calls") return;
      for (const call of message.data) {
        if (!(call.id in window.__arrivals)) window.__arrivals[call.id] = [at, call.arrived_at];
      }
    });
    return source;
  }
  Recording.prototype = Original.prototype;
  window.EventSource = Recording;
})();
"""


@dataclass(frozen=True)
class FeedRun:
    """One run: per (console, call) latencies in ms, and what was missed."""

    consoles: int
    rate: int
    seconds: int
    placed: int
    answered: int
    latencies_ms: list[float]
    missed: int
    server_ms: list[float]  # the same, to a plain HTTP client of the feed: no browser

    def percentile(self, share: float, values: list[float] | None = None) -> float | None:
        """The nearest-rank percentile (``share`` 0..1) of the latencies, in ms."""
        chosen = self.latencies_ms if values is None else values
        return percentile_nearest_rank(chosen, share * 100) if chosen else None


def run_feed_bench(
    config: Path,
    consoles: int,
    rate: int,
    seconds: int,
    operators: int,
    log: Log,
    warmup: int = 5,
) -> tuple[FeedRun, dict[str, str]]:
    """Run the feed benchmark once; returns the run and the machine description.

    Starts its own Asterisk (refuses if one runs) and stops it at the end.
    Raises ``BenchError`` or ``local.ProvisionError``.
    """
    try:
        from playwright.async_api import async_playwright  # noqa: F401
    except ImportError:
        raise BenchError(
            "the feed bench drives chromium with Playwright, a dev dependency: run ./scripts/setup"
        ) from None
    chromium = shutil.which("chromium")
    if chromium is None:
        raise BenchError("Debian's chromium is missing: run ./scripts/setup")
    setup = prepare(config, operators, "vvk-bench-feed-", log)
    layout, work, settings = setup.layout, setup.work, setup.settings
    description = machine()
    description["chromium"] = _version([chromium, "--version"])
    local.up(settings, setup.calendar, layout, setup.now, log)
    try:
        database = f"sqlite+aiosqlite:///{work / 'calls.sqlite3'}"
        with _processes() as phones:
            _start_phones(settings, work, phones)
            controller = _start_controller(setup.config, setup.clock, database, work)
            try:
                token = _token(setup.config, database)
                run = asyncio.run(
                    _measure(chromium, token, settings, consoles, rate, seconds, warmup, work, log)
                )
            finally:
                _stop(controller)
    finally:
        local.down(layout, log)
    shutil.rmtree(work, ignore_errors=True)
    return run, description


def _version(command: list[str]) -> str:
    found = subprocess.run(command, capture_output=True, text=True, check=False)
    return found.stdout.strip() or "?"


def _token(config: Path, database: str) -> str:
    """An operator's bearer token, made as ops make one."""
    vvk = Path(sys.executable).parent / "vvk-pbx"
    made = subprocess.run(
        [
            *(str(vvk), "tokens", "create", "--role", "operator", "--name", "bench-feed"),
            *("--config", str(config), "--database", database),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise BenchError(f"vvk-pbx tokens create failed: {made.stderr.strip()}")
    return made.stdout.strip()


async def _measure(
    chromium: str,
    token: str,
    settings: Any,
    consoles: int,
    rate: int,
    seconds: int,
    warmup: int,
    work: Path,
    log: Log,
) -> FeedRun:
    from playwright.async_api import async_playwright

    base = f"http://127.0.0.1:{HEALTH_PORT}"
    exten = digits(settings.switchboard.number)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            pages = []
            for _ in range(consoles):
                context = await browser.new_context(
                    base_url=base, extra_http_headers={"Authorization": f"Bearer {token}"}
                )
                page = await context.new_page()
                await page.add_init_script(RECORDER)
                await page.goto("/console")
                await page.get_by_test_id("queue-empty").wait_for(timeout=15_000)
                pages.append(page)
            log(f"{consoles} consoles open; {warmup} s of load not measured …")
            if warmup:
                await asyncio.to_thread(
                    _place_calls, settings, exten, rate, warmup, work, "feed-warmup"
                )
                await asyncio.sleep(2)
            started_ms = time.time() * 1000
            log(f"{rate} calls/s for {seconds} s …")
            plain: dict[str, tuple[float, str]] = {}
            listener = asyncio.create_task(_listen(base, token, plain))
            placed, answered, _, _ = await asyncio.to_thread(
                _place_calls, settings, exten, rate, seconds, work, "feed"
            )
            await asyncio.sleep(2)  # the last changes reach the pages
            listener.cancel()
            latencies: list[float] = []
            missed = 0
            seen_calls: set[str] = set()
            per_page = [await page.evaluate("window.__arrivals") for page in pages]
            for arrivals in per_page:
                for call_id, (at_ms, arrived_at) in arrivals.items():
                    arrived_ms = datetime.fromisoformat(arrived_at).timestamp() * 1000
                    if arrived_ms < started_ms:
                        continue  # the warm-up's
                    seen_calls.add(call_id)
                    latencies.append(at_ms - arrived_ms)
            for arrivals in per_page:
                missed += len(seen_calls - set(arrivals))
            missed += max(0, placed - len(seen_calls)) * consoles
        finally:
            await browser.close()
    server = [
        at_ms - datetime.fromisoformat(arrived_at).timestamp() * 1000
        for at_ms, arrived_at in plain.values()
        if datetime.fromisoformat(arrived_at).timestamp() * 1000 >= started_ms
    ]
    return FeedRun(consoles, rate, seconds, placed, answered, latencies, missed, server)


async def _listen(base: str, token: str, seen: dict[str, tuple[float, str]]) -> None:
    """One more subscriber of the feed, in this process: when each call first shows."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with (
        aiohttp.ClientSession(headers=headers, timeout=timeout) as session,
        session.get(f"{base}/events") as response,
    ):
        event, data = "", ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line and data:
                if event == "change":
                    at_ms = time.time() * 1000
                    message = json.loads(data)
                    if message["section"] == "calls":
                        for call in message["data"]:
                            seen.setdefault(call["id"], (at_ms, call["arrived_at"]))
                event, data = "", ""


def markdown(run: FeedRun, description: dict[str, str], when: datetime) -> str:
    """The result as a Markdown section for ``docs/benchmarks.md``."""
    median = statistics.median(run.latencies_ms) if run.latencies_ms else None

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    server_median = statistics.median(run.server_ms) if run.server_ms else None
    return "\n".join(
        [
            f"## The live feed: Asterisk to {run.consoles} consoles, "
            f"{when.strftime('%Y-%m-%d %H:%M')} UTC",
            "",
            *[f"- {key}: {value}" for key, value in description.items()],
            "",
            "| consoles | calls/s | s | calls placed | answered | samples | missed "
            "| median ms | p99 ms | max ms | no browser: median ms | p99 ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {run.consoles} | {run.rate} | {run.seconds} | {run.placed} | {run.answered} "
            f"| {len(run.latencies_ms)} | {run.missed} | {ms(median)} "
            f"| {ms(run.percentile(0.99))} | {ms(max(run.latencies_ms, default=None))} "
            f"| {ms(server_median)} | {ms(run.percentile(0.99, run.server_ms))} |",
            "",
        ]
    )
