"""``vvk-pbx bench``: SIPp load through the local Asterisk, a pure-dialplan route against the controller's.

For each rate (calls/s) the same SIPp caller (built-in ``uac``, hangs up at
once after the answer) calls from the test trunk (127.0.0.2) for ``seconds``:

(a) ``dialplan``: extension ``vvk-bench-dialplan`` in ``from-trunk`` does
    ``Dial(PJSIP/<first operator>)`` (written to ``extensions-local.conf``);
(b) ``controller``: the switchboard number, into ``vvk-pbx run`` (a fresh
    process per rate, at an instant when the switchboard is open).

Each measured run follows a few seconds of the same load that are not
measured (``warmup``): the first seconds of a fresh process are slower.

Operator phones are SIPp built-in ``uas`` processes that answer at once. The
bench config is the given config with ``operators`` operators (1001…) and the
``longest-idle`` strategy, so the controller rings one phone per call like
the dialplan does, and a call never waits for a busy operator.

INVITE→200 is timed on the wire (``wire.WireTimer``: kernel timestamps on
loopback; SIPp's own figures come in 4 ms steps, asterisk-notes.md). CPU
seconds come from ``/proc/<pid>/stat`` (utime + stime), peak RSS from
``VmHWM`` in ``/proc/<pid>/status``. A benchmark, never a timed test.
"""

from __future__ import annotations

import csv
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vvk_pbx.asterisk import local
from vvk_pbx.bench.wire import WireResult, WireTimer
from vvk_pbx.config import load
from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.routing import digits

Log = Callable[[str], None]

DIALPLAN_EXTEN = "vvk-bench-dialplan"
CALLER_HOST = "127.0.0.2"
HEALTH_PORT = 18090
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark cannot run here; the message says why."""


@dataclass(frozen=True)
class RouteRun:
    """One route at one rate: what SIPp saw, what the wire showed, what it cost."""

    route: str  # "dialplan" or "controller"
    rate: int  # calls per second
    seconds: int
    placed: int  # calls SIPp was told to place
    sipp_successful: int
    sipp_failed: int
    wire: WireResult
    asterisk_cpu_s: float
    controller_cpu_s: float | None  # None on the dialplan route
    controller_peak_rss_mb: float | None
    # The controller's own log: calls a person answered (not the queue's welcome, A2).
    person_answered: int | None = None

    @property
    def success_rate(self) -> float:
        return self.sipp_successful / self.placed if self.placed else 0.0

    def per_call_ms(self, cpu_s: float | None) -> float | None:
        return None if cpu_s is None or not self.placed else 1000 * cpu_s / self.placed


# ----------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (``proc(5)``, fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    """``VmHWM``: the process's peak resident set size, in MB (1 MB = 2**20 bytes)."""
    match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    if match is None:
        raise BenchError(f"no VmHWM for pid {pid}")
    return int(match.group(1)) / 1024


def free_udp_port(host: str, start: int = 30000, stop: int = 40000) -> int:
    """The first UDP port in ``[start, stop)`` free on ``host``. Raises ``BenchError``."""
    for port in range(start, stop):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise BenchError(f"no free UDP port on {host} in {start}-{stop - 1}")


@contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start_phones(settings: Settings, work: Path, started: list[subprocess.Popen[bytes]]) -> None:
    host = settings.asterisk.phones.host
    for n, operator in enumerate(settings.operators):
        port = int(operator.extension) + settings.asterisk.phones.port_offset
        with (work / f"phone-{operator.extension}.out").open("wb") as out:
            started.append(
                subprocess.Popen(
                    [
                        "sipp",
                        "-sn",
                        "uas",
                        "-i",
                        host,
                        "-p",
                        str(port),
                        "-mp",
                        str(30000 + 8 * n),
                        "-nostdin",
                        "-trace_err",
                        "-error_file",
                        str(work / f"phone-{operator.extension}.err"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=work,
                )
            )
    time.sleep(0.5)
    for process in started:
        if process.poll() is not None:
            raise BenchError(f"an operator phone (sipp uas) exited at once: see {work}")


def _start_controller(
    config: Path, clock: datetime, database: str, work: Path
) -> subprocess.Popen[bytes]:
    vvk = Path(sys.executable).parent / "vvk-pbx"
    log = (work / "controller.log").open("ab")
    process = subprocess.Popen(
        [
            str(vvk),
            "run",
            "--config",
            str(config),
            "--clock",
            clock.isoformat(),
            "--health-port",
            str(HEALTH_PORT),
            "--database",
            database,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(
                f"vvk-pbx run exited ({process.returncode}): see {work}/controller.log"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise BenchError(f"vvk-pbx run never became healthy: see {work}/controller.log")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _sipp_counts(stat_file: Path) -> tuple[int, int]:
    """(successful, failed) calls from SIPp's ``-trace_stat`` CSV: the last row's totals."""
    with stat_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    if not rows:
        raise BenchError(f"{stat_file}: SIPp wrote no statistics")
    last = rows[-1]
    return int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])


def _place_calls(
    settings: Settings, exten: str, rate: int, seconds: int, work: Path, tag: str
) -> tuple[int, int, int, WireResult]:
    """Run the SIPp caller; returns (placed, successful, failed, wire timings)."""
    asterisk = settings.asterisk
    port = free_udp_port(CALLER_HOST, 15060, 16060)
    placed = rate * seconds
    stat_file = work / f"caller-{tag}.csv"
    command = [
        "sipp",
        "-sn",
        "uac",
        f"127.0.0.1:{asterisk.sip_port}",
        "-s",
        exten,
        "-i",
        CALLER_HOST,
        "-p",
        str(port),
        "-mp",
        str(free_udp_port(CALLER_HOST, 20000, 21000)),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(placed),
        "-d",
        "0",
        "-nostdin",
        "-timeout",
        str(seconds + 60),
        "-timeout_error",
        "-recv_timeout",
        "10000",
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(work / f"caller-{tag}.err"),
    ]
    with WireTimer(port) as timer, (work / f"caller-{tag}.out").open("wb") as out:
        subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
        )
        time.sleep(0.5)  # the last 200s are already on the wire; let the capture drain
    successful, failed = _sipp_counts(stat_file)
    return placed, successful, failed, timer.result()


# ----------------------------------------------------------------------------- setup


def bench_config(source: Path, operators: int, work: Path) -> Path:
    """A copy of ``source`` with ``operators`` operators (1001…) and the longest-idle strategy.

    Raises ``BenchError`` when the result does not validate (the message lists why).
    """
    text = source.read_text(encoding="utf-8")
    text, replaced = re.subn(r'(?m)^strategy = ".*"$', 'strategy = "longest-idle"', text)
    if replaced != 1:
        text += '\n[queue]\nstrategy = "longest-idle"\n'
    text = re.sub(r"(?ms)^\[\[operators\]\]\n.*?(?=^\[|\Z)", "", text)
    text += "".join(
        f'\n[[operators]]\nname = "Bänk {n}"\nextension = "{1000 + n}"\n'
        for n in range(1, operators + 1)
    )
    path = work / "bench.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load(path)
    except Exception as exc:
        raise BenchError(f"the bench config does not validate: {exc}") from exc
    return path


def next_open_instant(calendar: Calendar, now: datetime) -> datetime:
    """An instant when the switchboard is open, a minute into its next (or current) opening."""
    at = now
    if not calendar.is_open(at):
        change = calendar.status(at).next_change
        if change is None:
            raise BenchError(
                "the switchboard never opens: nothing for the controller route to ring"
            )
        at = change
    return at + timedelta(minutes=1)


def _local_dialplan(settings: Settings) -> str:
    first = settings.operators[0].extension
    return (
        "; Written by `vvk-pbx bench`: the pure-dialplan comparison route.\n"
        "[from-trunk]\n"
        f"exten => {DIALPLAN_EXTEN},1,Dial(PJSIP/{first})\n"
        " same => n,Hangup()\n"
    )


def machine() -> dict[str, str]:
    """A description of this machine for the record."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
    return {
        "cpu": f"{cpu} × {os.cpu_count()} (online for this process: {len(os.sched_getaffinity(0))})",
        "memory": f"{int(mem_kb.group(1)) // 1024} MB" if mem_kb else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sipp": subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False)
        .stdout.strip()
        .splitlines()[0:1][0]
        if shutil.which("sipp")
        else "?",
    }


@dataclass(frozen=True)
class Setup:
    """What a benchmark run starts from: the bench config (and where it is written), its
    calendar, now (UTC) and the open instant the controller's clock is set to."""

    layout: local.Layout
    work: Path
    config: Path
    settings: Settings
    calendar: Calendar
    now: datetime
    clock: datetime


def prepare(config: Path, operators: int, prefix: str, log: Log) -> Setup:
    """Check the machine (root, sipp, no local Asterisk running: a demo's controller or
    phones would distort the figures) and write the bench config into a new work
    folder. Raises ``BenchError`` or ``local.ProvisionError``."""
    local.check_host()
    if shutil.which("sipp") is None:
        raise BenchError("sipp is missing: apt-get install sip-tester")
    layout = local.Layout.default()
    if local.running_pid(layout) is not None:
        raise BenchError(
            "the local Asterisk already runs: stop it first (./scripts/stop or `vvk-pbx asterisk down`)"
        )
    work = Path(tempfile.mkdtemp(prefix=prefix))
    log(f"bench files in {work} (removed when the bench succeeds)")
    config_path = bench_config(config, operators, work)
    settings = load(config_path)
    calendar = Calendar(settings.hours_policy())
    now = datetime.now(UTC)
    clock = next_open_instant(calendar, now.astimezone(calendar.tz))
    return Setup(layout, work, config_path, settings, calendar, now, clock)


def run_bench(
    config: Path, rates: list[int], seconds: int, operators: int, log: Log, warmup: int = 5
) -> tuple[list[RouteRun], dict[str, str]]:
    """Run both routes at every rate; returns the runs and the machine description.

    Each run is preceded by ``warmup`` seconds of the same load, not measured.

    Starts its own Asterisk (refuses if one runs: a demo's controller or phones
    would distort the figures) and stops it at the end. Raises ``BenchError``
    or ``local.ProvisionError``.
    """
    setup = prepare(config, operators, "vvk-bench-", log)
    layout, work, config_path, settings = setup.layout, setup.work, setup.config, setup.settings
    calendar, now, clock = setup.calendar, setup.now, setup.clock
    runs: list[RouteRun] = []
    description = machine()
    local.up(settings, calendar, layout, now, log)
    try:
        etc = layout.inside(local.CHROOT.etc)
        (etc / "extensions-local.conf").write_text(_local_dialplan(settings), encoding="utf-8")
        local.cli(layout, "dialplan reload")
        if DIALPLAN_EXTEN not in local.cli(layout, "dialplan show from-trunk"):
            raise BenchError("the bench's dialplan route did not load")
        version = local.cli(layout, "core show version").strip()
        description["asterisk"] = version.splitlines()[0] if version else "?"
        asterisk_pid = local.running_pid(layout)
        assert asterisk_pid is not None
        with _processes() as phones:
            _start_phones(settings, work, phones)
            for rate in rates:
                for route in ("dialplan", "controller"):
                    runs.append(
                        _one(
                            settings,
                            config_path,
                            route,
                            rate,
                            seconds,
                            clock,
                            asterisk_pid,
                            work,
                            log,
                            warmup,
                        )
                    )
    finally:
        local.down(layout, log)
    # Kept when a run fails, for its SIPp and controller logs; gone when all went well.
    shutil.rmtree(work, ignore_errors=True)
    return runs, description


def _one(
    settings: Settings,
    config_path: Path,
    route: str,
    rate: int,
    seconds: int,
    clock: datetime,
    asterisk_pid: int,
    work: Path,
    log: Log,
    warmup: int,
) -> RouteRun:
    log(f"{route} route at {rate} calls/s for {seconds} s …")
    tag = f"{route}-{rate}"
    controller = None
    database = ""
    if route == "controller":
        database = f"sqlite+aiosqlite:///{work / f'calls-{rate}.sqlite3'}"
        controller = _start_controller(config_path, clock, database, work)
        exten = digits(settings.switchboard.number)
    else:
        exten = DIALPLAN_EXTEN
    try:
        time.sleep(1)
        if warmup:
            # Not measured: imports, compiled statements, pools and Asterisk's
            # caches warm up in the first seconds of either route.
            _place_calls(settings, exten, rate, warmup, work, f"{tag}-warmup")
            time.sleep(1)
        asterisk_before = cpu_seconds(asterisk_pid)
        controller_before = cpu_seconds(controller.pid) if controller else 0.0
        placed, ok, failed, wire = _place_calls(settings, exten, rate, seconds, work, tag)
        asterisk_cpu = cpu_seconds(asterisk_pid) - asterisk_before
        controller_cpu = cpu_seconds(controller.pid) - controller_before if controller else None
        rss = peak_rss_mb(controller.pid) if controller else None
    finally:
        if controller is not None:
            _stop(controller)
    person = _person_answered(database, placed) if controller is not None else None
    run = RouteRun(
        route, rate, seconds, placed, ok, failed, wire, asterisk_cpu, controller_cpu, rss, person
    )
    log(f"  {ok}/{placed} answered, {failed} failed; wire: {wire.summary()}")
    time.sleep(2)  # let Asterisk finish tearing the last calls down
    return run


def _person_answered(database: str, placed: int) -> int:
    """Calls of the measured run that a person answered, from the controller's call log.

    The log also holds the warm-up's calls: the measured ones are the last
    ``placed`` to arrive.
    """
    import asyncio

    from vvk_pbx.domain.calls import Outcome
    from vvk_pbx.storage.calllog import CallLog

    async def count() -> int:
        log = await CallLog.open(database)
        try:
            calls = (await log.list_calls())[-placed:]
        finally:
            await log.close()
        return sum(1 for c in calls if c.outcome is Outcome.ANSWERED and c.answered_by)

    return asyncio.run(count())


# ----------------------------------------------------------------------------- report


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _ratio(b: float | None, a: float | None) -> str:
    return "–" if a is None or b is None or a == 0 else f"{b / a:.2f}"


def table_rows(runs: list[RouteRun]) -> list[list[str]]:
    """One row per route and rate, with the controller's ratios to the dialplan at that rate."""
    by_key = {(r.route, r.rate): r for r in runs}
    rows = []
    for r in runs:
        base = by_key.get(("dialplan", r.rate))
        median_ratio = p99_ratio = "–"
        if r.route == "controller" and base is not None:
            median_ratio = _ratio(r.wire.median_ms, base.wire.median_ms)
            p99_ratio = _ratio(r.wire.p99_ms, base.wire.p99_ms)
        rows.append(
            [
                str(r.rate),
                r.route,
                f"{r.sipp_successful}/{r.placed}",
                f"{100 * r.success_rate:.2f} %",
                str(r.sipp_failed),
                "–" if r.person_answered is None else str(r.person_answered),
                str(len(r.wire.latencies_ms)),
                _ms(r.wire.median_ms),
                _ms(r.wire.p99_ms),
                median_ratio,
                p99_ratio,
                _ms(r.per_call_ms(r.asterisk_cpu_s)),
                _ms(r.per_call_ms(r.controller_cpu_s)),
                "–" if r.controller_peak_rss_mb is None else f"{r.controller_peak_rss_mb:.1f}",
            ]
        )
    return rows


HEADERS = [
    "calls/s",
    "route",
    "answered",
    "success",
    "failed",
    "a person answered",
    "timed",
    "median ms",
    "p99 ms",
    "median b/a",
    "p99 b/a",
    "Asterisk CPU ms/call",
    "controller CPU ms/call",
    "controller peak RSS MB",
]


def markdown(runs: list[RouteRun], description: dict[str, str], when: datetime) -> str:
    """The results as a Markdown section for ``docs/benchmarks.md``."""
    lines = [
        f"## Run of {when.strftime('%Y-%m-%d %H:%M')} UTC, {runs[0].seconds} s per rate"
        if runs
        else "## Run",
        "",
        *[f"- {key}: {value}" for key, value in description.items()],
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
        *["| " + " | ".join(row) + " |" for row in table_rows(runs)],
        "",
    ]
    return "\n".join(lines)
