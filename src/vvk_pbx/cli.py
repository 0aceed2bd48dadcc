"""The ``vvk-pbx`` command line: thin wrappers that parse, call config/domain, and print."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vvk_pbx.config import ConfigError, Settings, default_path, load
from vvk_pbx.domain.calendar import (
    SUPPORTED_YEARS,
    WEEKDAYS_SV,
    Calendar,
    UnsupportedYearError,
)
from vvk_pbx.services import views
from vvk_pbx.services.clock import SystemClock

if TYPE_CHECKING:
    # Imported where used: the controller's wiring pulls in aiohttp and SQLAlchemy,
    # which commands such as `hours` and `check-config` never need.
    from vvk_pbx import stores

T = TypeVar("T")

app = typer.Typer(
    help="vvk-pbx: the switchboard (växel) and referral (hänvisning) system on Asterisk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: one problem or status per line, never folded, so scripts can grep it.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        readable=False,
        help="The ops config file (default: $VVK_PBX_CONFIG or config/vvk-pbx.toml).",
        show_default=False,
    ),
]


def _load_or_exit(path: Path | None) -> Settings:
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        err.print(f"{len(exc.problems)} error(s) in the config.", markup=False)
        raise typer.Exit(2) from None


@app.command("check-config")
def check_config(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The file to check (default: $VVK_PBX_CONFIG or config/vvk-pbx.toml).",
            readable=False,  # the loader reports an unreadable file as FILE: (file): reason
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Validate the ops config. Exit 0 if valid; else list every error as FILE: key.path: reason."""
    if path is not None and config is not None and path != config:
        raise typer.BadParameter(f"two files to check: {path} and --config {config}")
    path = path if path is not None else config
    settings = _load_or_exit(path)
    file = path if path is not None else default_path()
    out.print(
        f"{file}: OK ({len(settings.operators)} operators, {len(settings.units)} units, "
        f"{len(settings.staff)} staff, {len(settings.on_call)} on-call services)",
        markup=False,
    )


def parse_instant(text: str, settings: Settings, option: str = "--at") -> datetime:
    """An ISO 8601 instant; without an offset it is local time in the site's zone (H4).

    Raises ``typer.BadParameter`` naming ``option``.
    """
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time, for example 2026-12-24T11:59", param_hint=option
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=settings.site.tz)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A rich table whose every cell is plain text: names, notes and numbers come from
    outside and are data, never markup (a note "möte [/x]" is shown as it is)."""
    shown = Table(title=Text(title))
    for column in columns:
        shown.add_column(Text(column))
    for row in rows:
        shown.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return shown


@app.command()
def hours(
    config: ConfigOption = None,
    year: Annotated[
        int | None,
        typer.Option(
            help="List every day of YEAR whose hours differ from the normal week.",
            min=SUPPORTED_YEARS.start,
            max=SUPPORTED_YEARS.stop - 1,
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Open or closed at this ISO 8601 time (local Europe/Stockholm if no offset)."
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            help="A unit's own phone hours (A7) instead of the switchboard's. A unit "
            "without phone hours of its own follows the switchboard."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the switchboard's opening hours: the status now (or --at a time), or the special
    days of a year."""
    if year is not None and at is not None:
        raise typer.BadParameter("give one of --year or --at, not both")
    settings = _load_or_exit(config)
    policy = settings.hours_policy()
    if unit is not None:
        if unit not in {u.id for u in settings.units}:
            units = ", ".join(sorted(u.id for u in settings.units))
            raise typer.BadParameter(f"no unit {unit!r} (units: {units})", param_hint="--unit")
        policy = settings.unit_hours_policy(unit) or policy
    calendar = Calendar(policy)
    if year is None:
        when = parse_instant(at, settings) if at is not None else _now(settings)
        try:
            status = calendar.status(when)
        except UnsupportedYearError as exc:
            raise typer.BadParameter(str(exc), param_hint="--at") from None
        if as_json:
            out.print_json(json.dumps(views.status_json(status), ensure_ascii=False))
            return
        state = "ÖPPET" if status.is_open else "STÄNGT"
        nxt = "aldrig inom två år" if status.next_change is None else status.next_change.isoformat()
        out.print(f"{status.at.isoformat(timespec='seconds')}: {state}", markup=False)
        out.print(f"  {status.reason}", markup=False)
        out.print(f"  Nästa ändring: {nxt}", markup=False)
        return
    days = calendar.differing_days(year)
    if as_json:
        out.print_json(json.dumps([views.schedule_json(d) for d in days], ensure_ascii=False))
        return
    whose = settings.site.name
    if unit is not None:
        unit_name = next(u.name for u in settings.units if u.id == unit)
        own = settings.unit_hours_policy(unit) is not None
        whose = f"{unit_name}, {'telefontid' if own else 'följer växeln'}"
    rows = [
        (
            d.day.isoformat(),
            WEEKDAYS_SV[d.day.weekday()],
            ", ".join(str(r) for r in d.ranges) or "stängt",
            d.reason,
        )
        for d in days
    ]
    out.print(table(f"Avvikande dagar {year} ({whose})", ("Datum", "Dag", "Öppet", "Orsak"), rows))


@app.command()
def simulate(
    caller: Annotated[
        str, typer.Option("--from", help="The caller: a phone number or an extension.")
    ],
    dialed: Annotated[
        str, typer.Option("--to", help="The dialed number, extension or feature code.")
    ],
    at: Annotated[
        str | None,
        typer.Option(
            help="When the call arrives (ISO 8601; local if no offset) [default: now, on the "
            "running controller's clock]."
        ),
    ] = None,
    config: ConfigOption = None,
    database: Annotated[
        str | None, typer.Option(help="The call log's database, for referrals (read only).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What happens to a call at a given time, without Asterisk (O1): the route and its
    trace, then what the caller hears and what rings, by the same flows as a real call.

    A caller that is an extension makes an internal call (a dial code if the
    dialed string starts with * or #); any other caller comes from the trunk.
    Referrals are read from the call log's database; nothing is stored.
    """
    from vvk_pbx import stores
    from vvk_pbx.asterisk.local import Layout
    from vvk_pbx.services.simulation import caller_kind, simulate

    settings = _load_or_exit(config)
    policy = settings.call_policy(Calendar(settings.hours_policy()))
    when = (parse_instant(at, settings) if at is not None else _now(settings)).astimezone(
        settings.site.tz
    )
    try:
        caller_kind(caller, dialed, policy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from") from None

    async def work() -> Any:
        try:
            async with stores.open_stores(settings, Layout.default(), database, False) as st:
                return await simulate(policy, st.referrals, caller, dialed, when)
        except stores.StorageError:
            return await simulate(policy, None, caller, dialed, when)  # no database: no referrals

    import asyncio

    try:
        result = asyncio.run(work())
    except UnsupportedYearError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from None
    if as_json:
        out.print_json(json.dumps(result.json(), ensure_ascii=False))
        return
    target = f" -> {result.target}" if result.target else ""
    shown = when.isoformat(timespec="seconds")
    out.print(f"{shown} {result.kind.value} call: {result.action}{target}", markup=False)
    for line in result.trace:
        out.print(f"  {line}", markup=False)
    for line in result.happens:
        out.print(f"  => {line}", markup=False)


@app.command("run")
def run_controller(
    config: ConfigOption = None,
    clock: Annotated[
        str | None,
        typer.Option(
            help="Run as if it were this time (ISO 8601), for demos and tests. Logged loudly."
        ),
    ] = None,
    health_port: Annotated[
        int, typer.Option(help="Port of the health endpoint on 127.0.0.1.")
    ] = 8089,
    database: Annotated[
        str | None,
        typer.Option(
            help="Call-log database URL [default: $VVK_PBX_DATABASE_URL or SQLite in the state dir]."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the call controller: connect to Asterisk's ARI and handle every call."""
    import uvloop

    from vvk_pbx import bootstrap
    from vvk_pbx.asterisk.local import Layout

    settings = _load_or_exit(config)
    clock_at = parse_instant(clock, settings, "--clock") if clock is not None else None
    bootstrap.log_setup(verbose)
    try:
        uvloop.run(bootstrap.run(settings, Layout.default(), clock_at, health_port, database))
    except bootstrap.StorageError as exc:
        err.print(f"vvk-pbx run: {exc}", markup=False)
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"vvk-pbx run: {exc}", markup=False)
        raise typer.Exit(1) from None


@app.command(
    "supervise",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def supervise_controller(
    ctx: typer.Context,
    pid_file: Annotated[
        Path | None,
        typer.Option(help="Write the running controller's pid here (it changes at a restart)."),
    ] = None,
) -> None:
    """Run the controller (`vvk-pbx run`, with the options given after this command) and
    start it again at once if it dies; SIGTERM stops both (issue 13)."""
    from vvk_pbx.supervise import supervise

    raise typer.Exit(supervise(ctx.args, pid_file))


calls_app = typer.Typer(help="The call log (A1, F1).", no_args_is_help=True)
app.add_typer(calls_app, name="calls")


def _with_store(
    database: str | None,
    command: str,
    settings: Settings,
    work: Callable[[stores.Stores], Awaitable[T]],
    create: bool = True,
) -> T:
    """Run ``work(stores)`` on the database (``stores.open_stores``; ``create`` False for
    commands that only read); a storage error is printed as ``vvk-pbx COMMAND: reason``
    and exits 1."""
    import asyncio

    from vvk_pbx import stores
    from vvk_pbx.asterisk.local import Layout

    async def run() -> T:
        async with stores.open_stores(settings, Layout.default(), database, create) as opened:
            return await work(opened)

    try:
        return asyncio.run(run())
    except stores.StorageError as exc:
        err.print(f"vvk-pbx {command}: {exc}", markup=False)
        raise typer.Exit(1) from None


def _calls(
    database: str | None, since: str | None, until: str | None, settings: Settings
) -> tuple[list[Any], dict[str, list[Any]]]:
    """The calls that arrived in the period, oldest first, and their legs by call id."""
    start = parse_instant(since, settings, "--since") if since else None
    end = parse_instant(until, settings, "--until") if until else None

    async def fetch(stores: stores.Stores) -> tuple[list[Any], dict[str, list[Any]]]:
        records = await stores.calls.list_calls(start, end)
        return records, await stores.calls.legs_by_call([r.id for r in records])

    return _with_store(database, "calls", settings, fetch, create=False)


SinceOption = Annotated[str | None, typer.Option(help="Calls that arrived at or after this time.")]
UntilOption = Annotated[str | None, typer.Option(help="Calls that arrived before this time.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(help="Call-log database: a SQLite file, or a URL (sqlite:///…, postgresql://…)."),
]


@calls_app.command("list")
def calls_list(
    config: ConfigOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    database: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List logged calls with arrival, ring and answer times, rings, the goal and the outcome."""
    settings = _load_or_exit(config)
    records, legs = _calls(database, since, until, settings)
    tz = settings.site.tz
    if as_json:
        rows = [views.call_json(r, tz, legs.get(r.id, [])) for r in records]
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    shown = [
        (
            r.arrived_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            r.caller,
            r.called,
            r.answered_by,
            r.rings,
            None if r.within_goal is None else ("ja" if r.within_goal else "nej"),
            r.outcome.value,
        )
        for r in records
    ]
    columns = ("Ankom", "Från", "Till", "Svarade", "Signaler", "Mål", "Utfall")
    out.print(table(f"Samtal ({len(records)})", columns, shown))


@calls_app.command("export")
def calls_export(
    config: ConfigOption = None,
    since: Annotated[
        str | None, typer.Option("--from", "--since", help="Calls that arrived at or after this.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", "--until", help="Calls that arrived before this.")
    ] = None,
    direction: Annotated[str | None, typer.Option(help="external or internal.")] = None,
    unit: Annotated[
        str | None, typer.Option(help="Calls to or answered by this unit's staff (a unit id).")
    ] = None,
    operator: Annotated[str | None, typer.Option(help="Calls answered by this extension.")] = None,
    outcome: Annotated[str | None, typer.Option(help="answered, abandoned, voicemail, …")] = None,
    database: DatabaseOption = None,
    fmt: Annotated[
        str, typer.Option("--format", help="csv, csv-sv (Excel: ; and a BOM), jsonl, xlsx, json.")
    ] = "json",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE, not stdout.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Export the call log (F1): CSV with formulas neutralised, a Swedish-Excel CSV, JSON
    lines, XLSX, or JSON with the legs; streamed, and recorded in the audit log (S1)."""
    import getpass
    import sys as _sys

    from vvk_pbx.services.export import FORMATS, ExportError, Filter

    settings = _load_or_exit(config)
    if as_json and fmt != "json":
        raise typer.BadParameter(f"--json asks for JSON, --format for {fmt}: give one")
    if fmt not in (*FORMATS, "json"):
        raise typer.BadParameter(", ".join((*FORMATS, "json")), param_hint="--format")
    if fmt == "json":  # the whole log with its legs, as calls list --json
        if any(v is not None for v in (direction, unit, operator, outcome, out_file)):
            raise typer.BadParameter("filters and --out need --format csv|csv-sv|jsonl|xlsx")
        records, legs = _calls(database, since, until, settings)
        rows = [views.call_json(r, settings.site.tz, legs.get(r.id, [])) for r in records]
        _sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if fmt == "xlsx" and out_file is None and _sys.stdout.isatty():
        raise typer.BadParameter("XLSX is a binary file: give --out FILE", param_hint="--out")
    wanted = Filter(
        parse_instant(since, settings, "--from") if since else None,
        parse_instant(until, settings, "--to") if until else None,
        direction,
        unit,
        operator,
        outcome,
    )
    now = _now(settings)
    who = f"cli:{getpass.getuser()}"

    # The bar needs the total; counting is a pass over the rows, so only for a bar.
    shown = (out_file is not None or not _sys.stdout.isatty()) and err.is_terminal

    async def export(stores: stores.Stores) -> int:
        try:
            stores.exports.query(wanted)  # a bad filter is refused before a file is made
            total = await stores.exports.count(wanted) if shown else 0
        except ExportError as exc:
            raise typer.BadParameter(exc.reason, param_hint=f"--{exc.field}") from None
        target = out_file.open("wb") if out_file is not None else _sys.stdout.buffer
        try:
            with _progress(total, shown) as tick:
                return await stores.exports.export(wanted, fmt, target, who, now, tick)
        finally:
            if out_file is not None:
                target.close()

    written = _with_store(database, "calls export", settings, export, create=False)
    if out_file is not None:
        err.print(f"{written} calls written to {out_file}", markup=False)


@contextlib.contextmanager
def _progress(total: int, shown: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while rows are written (a terminal only); ``tick(n)``."""
    if not shown or not err.is_terminal:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("Exporterar samtal", total=total)
        yield lambda n: bar.update(task, completed=n)


@app.command("report")
def report(
    month: Annotated[str, typer.Option(help="The month, e.g. 2026-11.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE, not stdout.")
    ] = None,
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """The monthly follow-up (F1): one self-contained HTML page in Swedish, printable."""
    from vvk_pbx.services.report import ReportError, build, render

    settings = _load_or_exit(config)
    now = _now(settings)

    async def make(stores: stores.Stores) -> str:
        try:
            figures = await build(month, stores.calls, stores.referrals.messages, settings, now)
        except ReportError as exc:
            raise typer.BadParameter(str(exc), param_hint="--month") from None
        return render(figures, settings)

    page = _with_store(database, "report", settings, make, create=False)
    if out_file is None:
        sys.stdout.write(page)
    else:
        out_file.write_text(page, encoding="utf-8")
        err.print(f"the report for {month} written to {out_file}", markup=False)


@app.command("bench")
def bench(
    config: ConfigOption = None,
    rates: Annotated[str, typer.Option(help="Call rates to drive, calls/s, comma-separated.")] = (
        "20,50,100"
    ),
    seconds: Annotated[int, typer.Option(min=1, help="Seconds of load per rate and route.")] = 60,
    warmup: Annotated[
        int, typer.Option(min=0, help="Seconds of the same load before each run, not measured.")
    ] = 5,
    operators: Annotated[
        int, typer.Option(min=1, max=50, help="Operator phones (SIPp uas) to answer.")
    ] = 25,
    markdown_file: Annotated[
        Path | None,
        typer.Option("--markdown", help="Append the results to this Markdown file."),
    ] = None,
) -> None:
    """Benchmark: SIPp load on a pure-dialplan route and on the controller route, side by side.

    Starts its own local Asterisk (needs root; refuses if one runs), times
    INVITE→200 on the wire, and prints the success rate, median and p99
    latency, CPU per call and the controller's peak RSS. Takes about
    2 × rates × seconds.
    """
    from vvk_pbx.asterisk.local import ProvisionError
    from vvk_pbx.bench.run import BenchError, markdown, run_bench

    try:
        rate_list = [int(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise typer.BadParameter("comma-separated whole numbers, e.g. 20,50,100") from None
    if not rate_list or any(r < 1 or r > 1000 for r in rate_list):
        raise typer.BadParameter("each rate must be 1–1000 calls/s", param_hint="--rates")
    _load_or_exit(config)  # a broken config is reported as such, before anything starts
    started = SystemClock().real()
    try:
        runs, description = run_bench(
            config or default_path(), rate_list, seconds, operators, _log, warmup
        )
    except (BenchError, ProvisionError) as exc:
        err.print(f"vvk-pbx bench: {exc}", markup=False)
        raise typer.Exit(1) from None
    # Plain Markdown, not a rich table: fourteen columns stay readable in a
    # pipe or an 80-column terminal, and can be pasted as they are.
    out.print(markdown(runs, description, started), markup=False, soft_wrap=True)
    if markdown_file is not None:
        with markdown_file.open("a", encoding="utf-8") as handle:
            handle.write("\n" + markdown(runs, description, started))
        out.print(f"results appended to {markdown_file}", markup=False)


@app.command("bench-export")
def bench_export(
    config: ConfigOption = None,
    rows: Annotated[int, typer.Option(min=1000, help="Generated call rows.")] = 1_000_000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="Runs of each command.")] = 3,
    markdown_file: Annotated[
        Path | None,
        typer.Option("--markdown", help="Append the result to this Markdown file."),
    ] = None,
) -> None:
    """Benchmark: the CSV export against sqlite3 -csv, the XLSX export and the monthly report
    over ROWS generated calls in SQLite; wall time and peak RSS, median of RUNS."""
    from vvk_pbx.bench.exports import markdown, run_export_bench
    from vvk_pbx.bench.run import BenchError

    _load_or_exit(config)
    started = SystemClock().real()
    try:
        timed, description = run_export_bench(rows, runs, config or default_path(), _log)
    except BenchError as exc:
        err.print(f"vvk-pbx bench-export: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(markdown(timed, description, started, runs), markup=False, soft_wrap=True)
    if markdown_file is not None:
        with markdown_file.open("a", encoding="utf-8") as handle:
            handle.write("\n" + markdown(timed, description, started, runs))
        out.print(f"results appended to {markdown_file}", markup=False)


@app.command("bench-feed")
def bench_feed(
    config: ConfigOption = None,
    consoles: Annotated[
        int, typer.Option(min=1, max=100, help="Console pages open in headless chromium.")
    ] = 20,
    rate: Annotated[int, typer.Option(min=1, max=200, help="Calls/s to the switchboard.")] = 10,
    seconds: Annotated[int, typer.Option(min=1, help="Seconds of measured load.")] = 30,
    warmup: Annotated[int, typer.Option(min=0, help="Seconds of load before, not measured.")] = 5,
    operators: Annotated[
        int, typer.Option(min=1, max=50, help="Operator phones (SIPp uas) to answer.")
    ] = 25,
    markdown_file: Annotated[
        Path | None,
        typer.Option("--markdown", help="Append the result to this Markdown file."),
    ] = None,
) -> None:
    """Benchmark: how long a call's arrival takes from Asterisk to open consoles (issue 11).

    Starts its own local Asterisk, the controller and CONSOLES pages of /console in
    Debian's headless chromium (Playwright: ./scripts/setup), then calls at RATE
    calls/s; prints the median and p99 from Asterisk's StasisStart to the page.
    """
    from vvk_pbx.asterisk.local import ProvisionError
    from vvk_pbx.bench.feed import markdown, run_feed_bench
    from vvk_pbx.bench.run import BenchError

    _load_or_exit(config)
    started = SystemClock().real()
    try:
        run, description = run_feed_bench(
            config or default_path(), consoles, rate, seconds, operators, _log, warmup
        )
    except (BenchError, ProvisionError) as exc:
        err.print(f"vvk-pbx bench-feed: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(markdown(run, description, started), markup=False, soft_wrap=True)
    if markdown_file is not None:
        with markdown_file.open("a", encoding="utf-8") as handle:
            handle.write("\n" + markdown(run, description, started))
        out.print(f"results appended to {markdown_file}", markup=False)


referrals_app = typer.Typer(help="Referrals (hänvisningar, R1-R6).", no_args_is_help=True)
app.add_typer(referrals_app, name="referrals")


@referrals_app.command("list")
def referrals_list(
    config: ConfigOption = None,
    database: DatabaseOption = None,
    at: Annotated[str | None, typer.Option(help="At this time instead of now.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every referral in force now (or --at), by extension: what the operator sees (R6)."""

    settings = _load_or_exit(config)
    when = parse_instant(at, settings) if at else _now(settings)

    async def fetch(stores: stores.Stores) -> list[dict[str, Any]]:
        service = stores.referrals
        found = await service.in_force_now(when)
        return [views.referral_json(service, found[ext]) for ext in sorted(found)]

    rows = _with_store(database, "referrals", settings, fetch, create=False)
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    names = dict(settings.extensions())
    shown = []
    for row in rows:
        back = _minute(row["end"])
        if row["announced_end"] != row["end"]:
            # What callers are told: the next time the unit and the switchboard are open.
            back += f" (nås {_minute(row['announced_end'])})"
        shown.append(
            (
                row["extension"],
                names.get(row["extension"]),
                row["phrase"] or row["reason"],
                back,
                row["note"],
            )
        )
    columns = ("Ankn", "Namn", "Orsak", "Tillbaka", "Anteckning")
    out.print(table(f"Hänvisningar ({len(rows)})", columns, shown))


@referrals_app.command("set")
def referrals_set(
    extension: Annotated[str, typer.Argument(help="The person's extension.")],
    reason: Annotated[int, typer.Option(help="A reason code of the config's referral_reasons.")],
    until: Annotated[str, typer.Option(help="Return time, e.g. 2026-12-07T09:00.")],
    start: Annotated[str | None, typer.Option("--from", help="Start (default: now).")] = None,
    note: Annotated[str | None, typer.Option(help="A note for the operators.")] = None,
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """Refer a person's phone from the command line (R2, R3: a start in the future waits)."""
    from vvk_pbx.domain.referral import Source
    from vvk_pbx.services.referrals import ReferralError, require_time_of_day

    settings = _load_or_exit(config)
    begin = parse_instant(start, settings, "--from") if start else _now(settings)
    end = parse_instant(until, settings, "--until")

    async def store_it(stores: stores.Stores) -> dict[str, Any]:
        service = stores.referrals
        referral = await service.set_referral(
            extension, reason, begin, end, "cli", Source.CLI, note
        )
        return views.referral_json(service, referral)

    try:
        require_time_of_day(until, "until")
        row = _with_store(database, "referrals", settings, store_it)
    except ReferralError as exc:
        hint = {"extension": "EXTENSION", "reason": "--reason", "note": "--note", "from": "--from"}
        raise typer.BadParameter(exc.reason, param_hint=hint.get(exc.field, "--until")) from None
    out.print_json(json.dumps(row, ensure_ascii=False))


@referrals_app.command("clear")
def referrals_clear(
    extension: Annotated[str, typer.Argument(help="The person's extension.")],
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """Open a person's phone again (R4). Exit 0 also when there was nothing to clear."""
    from vvk_pbx.services.referrals import ReferralError

    settings = _load_or_exit(config)
    now = _now(settings)

    async def clear(stores: stores.Stores) -> Any:
        return await stores.referrals.clear_referral(extension, now)

    try:
        cleared = _with_store(database, "referrals", settings, clear)
    except ReferralError as exc:
        raise typer.BadParameter(exc.reason, param_hint="EXTENSION") from None
    _log(f"{extension}: referral cleared" if cleared else f"{extension}: no referral in force")


pins_app = typer.Typer(
    help="Staff PINs for codes on another phone and voicemail.", no_args_is_help=True
)
app.add_typer(pins_app, name="pins")


@pins_app.command("set")
def pins_set(
    extension: Annotated[str, typer.Argument(help="The person's extension.")],
    pin: Annotated[
        str | None, typer.Option(help="4-8 digits; a random 6-digit PIN if left out.")
    ] = None,
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """Set a person's PIN (kept hashed) and print it once. Also unlocks the extension."""
    from vvk_pbx.domain.pins import new_pin
    from vvk_pbx.services.referrals import ReferralError

    settings = _load_or_exit(config)
    chosen = pin if pin is not None else new_pin()

    async def store_it(stores: stores.Stores) -> None:
        await stores.referrals.set_pin(extension, chosen)

    try:
        _with_store(database, "pins", settings, store_it)
    except ReferralError as exc:
        hint = "--pin" if exc.field == "pin" else "EXTENSION"
        raise typer.BadParameter(exc.reason, param_hint=hint) from None
    out.print(f"PIN for {extension}: {chosen}", markup=False)


tokens_app = typer.Typer(
    help="Bearer tokens for machines on the HTTP API (S1): shown once, kept as a hash.",
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="operator, reports or admin.")],
    name: Annotated[str, typer.Option(help="Who uses it, e.g. intranet (unique).")],
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create a token and print it once: only its hash is kept."""
    from vvk_pbx.domain.access import token_role
    from vvk_pbx.storage.access import TokenExistsError

    settings = _load_or_exit(config)
    try:
        chosen = token_role(role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from None
    now = _now(settings)

    async def create(stores: stores.Stores) -> str:
        try:
            return await stores.access.create_token(name, chosen, now)
        except TokenExistsError as exc:
            # Not a storage fault (exit 1) but a name to choose again (exit 2).
            raise ValueError(str(exc)) from None

    try:
        secret = _with_store(database, "tokens", settings, create)
    except ValueError as exc:
        hint = "--role" if "role" in str(exc) else "--name"
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    _log(f"token {name!r} ({chosen.value}); it is shown this once, keep it safe:")
    out.print(secret, markup=False)


@tokens_app.command("list")
def tokens_list(
    config: ConfigOption = None,
    database: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The tokens, with their role and whether they are revoked (never the secrets)."""
    settings = _load_or_exit(config)
    tz = settings.site.tz

    async def fetch(stores: stores.Stores) -> list[dict[str, Any]]:
        return [views.token_json(t, tz) for t in await stores.access.tokens()]

    rows = _with_store(database, "tokens", settings, fetch, create=False)
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    shown = [
        (r["name"], r["role"], _minute(r["created_at"]), _minute(r["revoked_at"] or "") or None)
        for r in rows
    ]
    out.print(table(f"Nycklar ({len(rows)})", ("Namn", "Roll", "Skapad", "Återkallad"), shown))


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """Revoke a token at once. Exit 1 when there is none of that name in force."""
    settings = _load_or_exit(config)
    now = _now(settings)

    async def revoke(stores: stores.Stores) -> bool:
        return await stores.access.revoke(name, now)

    if not _with_store(database, "tokens", settings, revoke, create=False):
        err.print(f"vvk-pbx tokens: no token {name!r} in force", markup=False)
        raise typer.Exit(1)
    _log(f"token {name!r} revoked")


@app.command("callbacks")
def callbacks(
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only those past their deadline.")
    ] = False,
    unit: Annotated[str | None, typer.Option(help="Only this unit's staff (a unit id).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
    database: DatabaseOption = None,
) -> None:
    """The callback ledger (V2): voicemail messages and those operators took, their deadline
    (2 working days) and status."""
    from vvk_pbx.services.referrals import ReferralError

    settings = _load_or_exit(config)
    now = _now(settings)

    async def fetch(stores: stores.Stores) -> list[dict[str, Any]]:
        found = await stores.referrals.ledger(now, unit, overdue)
        return [views.message_json(m, now, settings.site.tz) for m in found]

    try:
        rows = _with_store(database, "callbacks", settings, fetch, create=False)
    except ReferralError as exc:
        raise typer.BadParameter(exc.reason, param_hint="--unit") from None
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    names = dict(settings.extensions())
    shown = [
        (
            f"{row['extension']} {names.get(row['extension'], '')}",
            f"{row['caller']} {row['name']}".strip(),
            _minute(row["left_at"]),
            _minute(row["deadline"]),
            _ledger_status(row),
            row["note"] if row["taken_by"] else "röstmeddelande",
            row["taken_by"] or "",
        )
        for row in rows
    ]
    columns = ("Till", "Från", "Lämnat", "Senast", "Status", "Meddelande", "Tagit av")
    out.print(table(f"Återringningar ({len(rows)})", columns, shown))


# The ledger's statuses as the staff and managers reading the table call them.
STATUS_SV = {"new": "ny", "heard": "avlyssnad", "called_back": "återringd", "deleted": "raderad"}


def _minute(iso: str) -> str:
    """An ISO 8601 time of the JSON views as the tables show it: "2026-11-30 14:30"."""
    return iso[:16].replace("T", " ")


def _ledger_status(row: dict[str, Any]) -> str:
    """ "FÖRSENAD ny", "återringd (sent)": the status in Swedish, with the deadline's verdict."""
    status = STATUS_SV.get(row["status"], row["status"])
    if row["overdue"]:
        return f"FÖRSENAD {status}"
    return f"{status} (sent)" if row["late"] else status


asterisk_app = typer.Typer(
    help="The local Asterisk 22 (a cached Debian root filesystem in a chroot; needs root).",
    no_args_is_help=True,
)
app.add_typer(asterisk_app, name="asterisk")
dialplan_app = typer.Typer(help="The dialplan fallback generated from the opening hours.")
app.add_typer(dialplan_app, name="dialplan")


def _log(message: str) -> None:
    err.print(message, markup=False)


def _now(settings: Settings) -> datetime:
    """The time every decision of a command reads: a running controller's (shifted by its
    --clock, said on stderr), else the real time."""
    from vvk_pbx import stores
    from vvk_pbx.asterisk.local import Layout

    clock, note = stores.cli_clock(Layout.default(), settings.site.tz)
    if note is not None:
        _log(note)
    return clock.now()


def _asterisk_now() -> datetime:
    # Asterisk's dialplan reads its own, real clock: what is rendered for it
    # (the fallback's special days and switches) is rendered around real time.
    return SystemClock().real()


def _require_root() -> None:
    # status/down/cli look into the chroot: without root they would misreport.
    from vvk_pbx.asterisk import local

    try:
        local.check_host()
    except local.ProvisionError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


@asterisk_app.command("up")
def asterisk_up(config: ConfigOption = None) -> None:
    """Build or reuse the rootfs, render the config from the ops file, start Asterisk, wait for ARI."""
    from vvk_pbx.asterisk import local

    settings = _load_or_exit(config)
    calendar = Calendar(settings.hours_policy())
    try:
        local.up(settings, calendar, local.Layout.default(), _asterisk_now(), _log)
    except local.ProvisionError as exc:
        err.print(f"vvk-pbx asterisk up: {exc}", markup=False)
        raise typer.Exit(1) from None


@asterisk_app.command("render")
def asterisk_render(
    output: Annotated[Path, typer.Option("--out", help="Write Asterisk's config files here.")],
    sounds: Annotated[
        Path | None, typer.Option(help="Also speak the Swedish prompts into this directory.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Render Asterisk's whole config from the ops file into a directory (for docker/ and other hosts).

    The ARI password is read from (or generated into) $VVK_PBX_STATE/ari-password.
    """
    from vvk_pbx.asterisk import local
    from vvk_pbx.asterisk.prompts import build_prompts
    from vvk_pbx.asterisk.render import render_config

    settings = _load_or_exit(config)
    calendar = Calendar(settings.hours_policy())
    layout = local.Layout.default()
    files = render_config(
        settings, calendar, _asterisk_now(), local.ari_password(layout), local.CHROOT
    )
    output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (output / name).write_text(text, encoding="utf-8")
    _log(f"wrote {len(files)} files to {output}")
    if sounds is not None:
        build_prompts(settings, calendar, layout.cache / "sounds", sounds, _log)
        _log(f"wrote the prompts to {sounds}")


sounds_app = typer.Typer(help="The Swedish prompts (espeak-ng, voice sv, 8 kHz WAV).")
app.add_typer(sounds_app, name="sounds")


@sounds_app.command("build")
def sounds_build(
    output: Annotated[
        Path | None,
        typer.Option("--out", help="Write them here instead of the local Asterisk's sounds."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Speak every prompt again from sounds/catalogue.toml and the config; run after the
    directory, the reasons, the hours or the on-call numbers change. Only changed
    texts are spoken again; Asterisk plays the new files at once."""
    from vvk_pbx.asterisk import local
    from vvk_pbx.asterisk.prompts import build_prompts

    settings = _load_or_exit(config)
    calendar = Calendar(settings.hours_policy())
    layout = local.Layout.default()
    target = output
    if target is None:
        if not (layout.rootfs / "usr").is_dir():
            err.print(
                "vvk-pbx sounds build: there is no local Asterisk yet "
                "(`vvk-pbx asterisk up` builds it and its prompts); or give --out DIR",
                markup=False,
            )
            raise typer.Exit(1)
        target = layout.inside(local.CHROOT.sounds)
    try:
        written = build_prompts(settings, calendar, layout.cache / "sounds", target, _log)
    except (RuntimeError, OSError) as exc:
        err.print(f"vvk-pbx sounds build: {exc}", markup=False)
        raise typer.Exit(1) from None
    _log(f"{len(written)} prompts in {target}")


@asterisk_app.command("down")
def asterisk_down() -> None:
    """Stop the local Asterisk."""
    from vvk_pbx.asterisk import local

    _require_root()
    local.down(local.Layout.default(), _log)


@asterisk_app.command("status")
def asterisk_status(config: ConfigOption = None) -> None:
    """Say whether the local Asterisk runs and ARI answers. Exit 0 if both, 1 if not."""
    from vvk_pbx.asterisk import local

    settings = _load_or_exit(config)
    _require_root()
    layout = local.Layout.default()
    pid = local.running_pid(layout)
    cached = "cached" if layout.stamp.exists() else "not built yet"
    out.print(f"rootfs: {layout.rootfs} ({cached})", markup=False)
    out.print(f"logs: {layout.inside(local.CHROOT.log)}/{{full,messages,stdout.log}}", markup=False)
    if pid is None:
        out.print("Asterisk: not running", markup=False)
        raise typer.Exit(1)
    ready = local.ari_ready(settings, layout)
    out.print(
        f"Asterisk: running (pid {pid}); ARI {'answers' if ready else 'does not answer'}",
        markup=False,
    )
    if not ready:
        raise typer.Exit(1)


@asterisk_app.command("cli")
def asterisk_cli(
    command: Annotated[list[str], typer.Argument(help="An Asterisk CLI command.")],
) -> None:
    """Run one Asterisk CLI command, e.g. `vvk-pbx asterisk cli core show channels`."""
    from vvk_pbx.asterisk import local

    _require_root()
    try:
        out.print(local.cli(local.Layout.default(), " ".join(command)), markup=False, end="")
    except local.ProvisionError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


@dialplan_app.command("render")
def dialplan_render(
    config: ConfigOption = None,
    at: Annotated[
        str | None, typer.Option(help="Render for this time instead of now (ISO 8601).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    reload: Annotated[
        bool,
        typer.Option("--reload", help="Install into the local Asterisk and reload its dialplan."),
    ] = False,
) -> None:
    """Print the fallback dialplan (extensions-fallback.conf) generated from the opening hours."""
    from vvk_pbx.asterisk.fallback import render_fallback

    settings = _load_or_exit(config)
    calendar = Calendar(settings.hours_policy())
    now = parse_instant(at, settings) if at is not None else _asterisk_now()
    if reload:
        from vvk_pbx.asterisk import local

        try:
            local.reload_dialplan(settings, calendar, local.Layout.default(), now)
        except local.ProvisionError as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(1) from None
        _log("dialplan rendered and reloaded")
        return
    text = render_fallback(settings, calendar, now)
    if output is None:
        out.print(text, markup=False, end="")
    else:
        output.write_text(text, encoding="utf-8")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`| head`): no traceback. The work is over (the database
        # closed with the event loop); exit at once, so that no finaliser (an open
        # workbook's zip) writes to the closed pipe again and prints one.
        import os

        sys.stderr.flush()
        os._exit(1)
