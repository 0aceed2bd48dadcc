"""The ``vvk-pbx`` command line: thin wrappers that parse, call config/domain, and print."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vvk_pbx.config import ConfigError, Settings, default_path, load
from vvk_pbx.domain.calendar import (
    SUPPORTED_YEARS,
    WEEKDAYS_SV,
    Calendar,
    DaySchedule,
    Status,
    UnsupportedYearError,
)

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
) -> None:
    """Validate the ops config. Exit 0 if valid; else list every error as FILE: key.path: reason."""
    settings = _load_or_exit(path)
    file = path if path is not None else default_path()
    out.print(
        f"{file}: OK ({len(settings.operators)} operators, {len(settings.units)} units, "
        f"{len(settings.staff)} staff, {len(settings.on_call)} on-call services)",
        markup=False,
    )


def parse_instant(text: str, settings: Settings) -> datetime:
    """An ISO 8601 instant; without an offset it is local time in the site's zone (H4)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time, for example 2026-12-24T11:59", param_hint="--at"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=settings.site.tz)


def status_json(status: Status) -> dict[str, Any]:
    return {
        "open": status.is_open,
        "reason": status.reason,
        "next_change": None if status.next_change is None else status.next_change.isoformat(),
    }


def schedule_json(day: DaySchedule) -> dict[str, Any]:
    return {
        "date": day.day.isoformat(),
        "intervals": [[f"{r.start:%H:%M}", f"{r.end:%H:%M}"] for r in day.ranges],
        "reason": day.reason,
    }


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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the switchboard's opening hours: the special days of a year, or the status at a time."""
    if (year is None) == (at is None):
        raise typer.BadParameter("give exactly one of --year or --at")
    settings = _load_or_exit(config)
    calendar = Calendar(settings.hours_policy())
    if at is not None:
        try:
            status = calendar.status(parse_instant(at, settings))
        except UnsupportedYearError as exc:
            raise typer.BadParameter(str(exc), param_hint="--at") from None
        if as_json:
            out.print_json(json.dumps(status_json(status), ensure_ascii=False))
            return
        state = "ÖPPET" if status.is_open else "STÄNGT"
        nxt = "aldrig inom två år" if status.next_change is None else status.next_change.isoformat()
        out.print(f"{status.at.isoformat()}: {state}", markup=False)
        out.print(f"  {status.reason}", markup=False)
        out.print(f"  Nästa ändring: {nxt}", markup=False)
        return
    assert year is not None
    days = calendar.differing_days(year)
    if as_json:
        out.print_json(json.dumps([schedule_json(d) for d in days], ensure_ascii=False))
        return
    table = Table(title=f"Avvikande dagar {year} ({settings.site.name})")
    table.add_column("Datum")
    table.add_column("Dag")
    table.add_column("Öppet")
    table.add_column("Orsak")
    for d in days:
        table.add_row(
            d.day.isoformat(),
            WEEKDAYS_SV[d.day.weekday()],
            ", ".join(str(r) for r in d.ranges) or "stängt",
            d.reason,
        )
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
