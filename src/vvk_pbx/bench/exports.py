"""``vvk-pbx bench-export``: the call log's exports and the monthly report over many rows.

A SQLite call log of ``rows`` generated calls (spread over the twelve months
of 2026) is made in a temporary folder. Then, each in its own process:

- ``vvk-pbx calls export --format csv`` of the whole log, against
  ``sqlite3 -csv`` running the same query (the yardstick);
- ``vvk-pbx calls export --format xlsx``;
- ``vvk-pbx report --month 2026-11``.

Wall time from start to exit, and the peak RSS of each (the child's
``ru_maxrss``). Each is run ``runs`` times; the median is reported. A
benchmark, never a timed test.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert

from vvk_pbx.bench.run import BenchError, machine
from vvk_pbx.storage.calllog import CallLog
from vvk_pbx.storage.tables import calls

Log = Callable[[str], None]
YARDSTICK_SQL = (
    "SELECT id, arrived_at, direction, caller, caller_name, called, ring_started_at, "
    "answered_at, answered_by, ended_at, outcome, rings, within_goal, trace "
    "FROM calls ORDER BY arrived_at, id"
)


@dataclass(frozen=True)
class Timed:
    """One command's runs: wall seconds and peak RSS in MB, per run."""

    name: str
    seconds: list[float]
    rss_mb: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak_mb(self) -> float:
        return max(self.rss_mb)


async def _make_log(path: Path, rows: int, log: Log) -> None:
    """A migrated SQLite call log with ``rows`` generated calls."""
    store = await CallLog.open(f"sqlite+aiosqlite:///{path}")
    await store.close()
    engine = create_engine(f"sqlite:///{path}")
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    span_s = 365 * 24 * 3600
    outcomes = ("answered", "answered", "answered", "abandoned", "closed", "voicemail")
    batch: list[dict[str, object]] = []
    made = 0
    with engine.begin() as connection:
        for n in range(rows):
            at = start + timedelta(seconds=rng.randrange(span_s))
            outcome = rng.choice(outcomes)
            answered = at + timedelta(seconds=rng.uniform(2, 40)) if outcome == "answered" else None
            batch.append(
                {
                    "id": f"b{n:08d}",
                    "direction": "external" if n % 5 else "internal",
                    "caller": f"070{rng.randrange(10**7):07d}",
                    "caller_name": '=HYPERLINK("x")' if n % 1000 == 0 else f"Uppringare {n}",
                    "called": "012319100",
                    "arrived_at": at,
                    "ring_started_at": at,
                    "answered_at": answered,
                    "answered_by": "1001" if answered else None,
                    "ended_at": at + timedelta(seconds=90),
                    "outcome": outcome,
                    "rings": int((answered - at).total_seconds() // 6) + 1 if answered else None,
                    "within_goal": (answered - at).total_seconds() < 24 if answered else None,
                    "trace": ["[H1-H4] öppet", "[A3] a free operator rings at once"],
                }
            )
            if len(batch) == 10_000:
                connection.execute(insert(calls), batch)
                made += len(batch)
                batch = []
                if made % 200_000 == 0:
                    log(f"  {made} rows …")
        if batch:
            connection.execute(insert(calls), batch)
    engine.dispose()


# A small launcher, so that the peak RSS measured is the command's and not that of this
# process's copy before the exec (a child's ru_maxrss counts its life before exec too).
LAUNCHER = """
import os, sys, time, json
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"s": time.perf_counter() - started, "kb": usage.ru_maxrss,
                  "rc": os.waitstatus_to_exitcode(status)}), file=sys.stderr)
"""


def _timed(name: str, command: list[str], runs: int, out: Path, log: Log) -> Timed:
    seconds, rss = [], []
    for _ in range(runs):
        with out.open("wb") as sink:
            done = subprocess.run(
                [sys.executable, "-c", LAUNCHER, *command],
                stdout=sink,
                stderr=subprocess.PIPE,
                check=False,
            )
        said = done.stderr.decode(errors="replace").strip().splitlines()
        try:
            measured = json.loads(said[-1])
        except (IndexError, ValueError):
            raise BenchError(f"{name}: no measurement: {done.stderr!r}") from None
        if measured["rc"] != 0:
            raise BenchError(f"{name} failed: {' '.join(said[:-1])}")
        seconds.append(float(measured["s"]))
        rss.append(measured["kb"] / 1024)
    timed = Timed(name, seconds, rss)
    log(f"  {name}: median {timed.median_s:.2f} s, peak RSS {timed.peak_mb:.0f} MB")
    return timed


def run_export_bench(
    rows: int, runs: int, config: Path, log: Log
) -> tuple[list[Timed], dict[str, str]]:
    """Generate the log, then time each command ``runs`` times. Raises ``BenchError``."""
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        raise BenchError("sqlite3 (the yardstick) is missing: apt-get install sqlite3")
    import asyncio

    work = Path(tempfile.mkdtemp(prefix="vvk-bench-export-"))
    database = work / "calls.sqlite3"
    log(f"making {rows} call rows in {database} …")
    made = time.perf_counter()
    asyncio.run(_make_log(database, rows, log))
    log(f"  made in {time.perf_counter() - made:.0f} s")
    vvk = str(Path(sys.executable).parent / "vvk-pbx")
    common = ["--database", str(database), "--config", str(config)]
    out = work / "out"
    timed = [
        _timed(
            "sqlite3 -csv (yardstick)",
            [sqlite3, "-csv", "-header", str(database), YARDSTICK_SQL],
            runs,
            out,
            log,
        ),
        _timed(
            "calls export --format csv",
            [vvk, "calls", "export", "--format", "csv", *common],
            runs,
            out,
            log,
        ),
        _timed(
            "calls export --format xlsx",
            [vvk, "calls", "export", "--format", "xlsx", "--out", str(work / "x.xlsx"), *common],
            runs,
            out,
            log,
        ),
        _timed(
            "report --month 2026-11", [vvk, "report", "--month", "2026-11", *common], runs, out, log
        ),
    ]
    description = machine()
    description["rows"] = f"{rows}, spread over 2026 (the report's month has about {rows // 12})"
    shutil.rmtree(work, ignore_errors=True)
    return timed, description


def markdown(timed: list[Timed], description: dict[str, str], when: datetime, runs: int) -> str:
    yardstick = timed[0].median_s
    lines = [
        f"## Exports and the report over many rows, {when:%Y-%m-%d %H:%M} UTC ({runs} runs each)",
        "",
        *[f"- {key}: {value}" for key, value in description.items() if key != "sipp"],
        "",
        "| command | median s | min s | max s | vs sqlite3 -csv | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for t in timed:
        ratio = f"{t.median_s / yardstick:.2f}×" if t is not timed[0] else "1×"
        lines.append(
            f"| {t.name} | {t.median_s:.2f} | {min(t.seconds):.2f} | {max(t.seconds):.2f} "
            f"| {ratio} | {t.peak_mb:.0f} |"
        )
    lines.append("")
    return "\n".join(lines)
