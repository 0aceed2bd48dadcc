"""Loading the ops config file, reporting every error as ``FILE: key.path: reason`` (O1).

Errors::

    ConfigError(ValueError)      the file is missing, is not TOML, or does not validate;
                                 ``.problems`` lists every problem found, never only the first
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from vvk_pbx.config.model import Settings

ENV_VAR = "VVK_PBX_CONFIG"
DEFAULT_PATH = Path("config/vvk-pbx.toml")


@dataclass(frozen=True)
class Problem:
    """One config error: the file, the dotted key path (``staff[2].extension``) and the reason."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class ConfigError(ValueError):
    """The config could not be loaded. ``problems`` holds every error found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def default_path() -> Path:
    """``$VVK_PBX_CONFIG``, else ``config/vvk-pbx.toml`` relative to the working directory."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH


def load(path: Path | str | None = None) -> Settings:
    """Read and validate the config file. Raises ``ConfigError`` listing every problem."""
    file = Path(path) if path is not None else default_path()
    name = str(file)
    try:
        # utf-8-sig: files saved by Notepad start with a byte order mark.
        raw = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError([Problem(name, "(file)", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, "(file)", f"cannot be read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(name, "(syntax)", f"not valid TOML: {exc}")]) from None
    return validate(raw, name)


def validate(raw: dict[str, Any], file: str) -> Settings:
    """Validate already-parsed TOML. Raises ``ConfigError`` listing every problem."""
    problems: list[Problem] = []
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc, file))
    problems.extend(Problem(file, key, reason) for key, reason in cross_checks(raw))
    if problems or settings is None:
        raise ConfigError(sorted(set(problems), key=_order))
    return settings


def _order(problem: Problem) -> tuple[list[tuple[int, int, str]], str]:
    # Natural order, so that staff[2] comes before staff[10].
    parts = [p for p in re.split(r"[.\[\]]", problem.key) if p]
    return [(1, int(p), "") if p.isdigit() else (0, 0, p) for p in parts], problem.reason


# Pydantic's wording for a wrong type, said the way an ops person reads a TOML file.
_TYPE_MESSAGES = {
    "tuple_type": 'expected a list in [ ], like ["1101", "1102"]',
    "list_type": 'expected a list in [ ], like ["1101", "1102"]',
    "string_type": "expected text in quotes",
    "int_type": "expected a whole number",
    "bool_type": "expected true or false",
    "date_type": "expected a date, like 2026-12-24",
    "datetime_type": "expected a date and time, like 2026-12-01T10:00:00",
    "model_type": "expected a table",
    "dict_type": "expected a table",
}


def key_path(loc: Sequence[int | str]) -> str:
    """``("staff", 2, "extension")`` -> ``"staff[2].extension"`` (indices count from 0)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _from_pydantic(exc: ValidationError, file: str) -> Iterator[Problem]:
    for err in exc.errors(include_url=False):
        # Pydantic adds the validator's name to loc for Annotated/union members;
        # keep only the parts that are keys or indices of the file.
        loc = [p for p in err["loc"] if isinstance(p, int) or not _is_internal(p)]
        kind = err["type"]
        if kind == "extra_forbidden":
            reason = "unknown key" + _suggestion(loc)
        elif kind == "missing":
            reason = "required key is missing"
        elif kind in _TYPE_MESSAGES:
            reason = f"{_TYPE_MESSAGES[kind]}, not {_show(err.get('input'))}"
        else:
            reason = str(err["msg"]).removeprefix("Value error, ")
            if kind in ("string_pattern_mismatch",) and "input" in err:
                reason = f"{err['input']!r} does not match {err['ctx']['pattern']}"
        yield Problem(file, key_path(loc), reason)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_internal(part: str) -> bool:
    return part.startswith(("function-", "tuple[", "union[", "lax-or-strict")) or part in (
        "TimeRange",
    )


def _suggestion(loc: Sequence[int | str]) -> str:
    allowed = _allowed_keys(Settings, loc[:-1])
    if not loc or not allowed:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"


def _allowed_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        current = None if info is None else _model_in(info.annotation)
    return sorted(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated or origin in (tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def cross_checks(raw: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Checks that span entries, run on the raw file so they report even when other keys fail.

    Yields ``(key path, reason)``: an extension used twice (staff and operators
    share one numbering plan), a person in an unknown unit, a duplicate unit id,
    on-call digit or reason code, two overrides for one date, and a manual
    switch that does not end after it starts (compared in the site's zone).
    """
    seen_ext: dict[str, str] = {}
    for table in ("operators", "staff"):
        for i, entry in _entries(raw, table):
            ext = entry.get("extension")
            if not isinstance(ext, str):
                continue
            here = f"{table}[{i}]"
            who = entry.get("name", "?")
            if ext in seen_ext:
                yield (
                    f"{here}.extension",
                    f"extension {ext} ({who}) is already used by {seen_ext[ext]}",
                )
            else:
                seen_ext[ext] = f"{here} ({who})"
    yield from _unique(raw, "units", "id", "unit id")
    yield from _unique(raw, "on_call", "digit", "on-call digit")
    yield from _unique(raw, "referral_reasons", "code", "reason code")
    yield from _unique(raw, "referral_reasons", "name", "reason name")
    unit_ids = {e["id"] for _, e in _entries(raw, "units") if isinstance(e.get("id"), str)}
    for i, person in _entries(raw, "staff"):
        unit = person.get("unit")
        if isinstance(unit, str) and unit not in unit_ids:
            known = ", ".join(sorted(unit_ids)) or "none"
            yield f"staff[{i}].unit", f"unknown unit {unit!r} (units: {known})"
    yield from _phone_ports(raw, seen_ext)
    yield from _overflow(raw, set(seen_ext), unit_ids)
    yield from _access(raw, set(seen_ext))
    overrides = raw.get("overrides")
    if isinstance(overrides, dict):
        yield from _override_dates(overrides)
        yield from _switch_order(overrides, _site_zone(raw))


def _overflow(
    raw: dict[str, Any], extensions: set[str], unit_ids: set[str]
) -> Iterator[tuple[str, str]]:
    # A6: every overflow entry must name a phone or a unit, or calls would overflow to nobody.
    queue = raw.get("queue")
    overflow = queue.get("overflow") if isinstance(queue, dict) else None
    if not isinstance(overflow, list):
        return
    for i, entry in enumerate(overflow):
        if isinstance(entry, str) and entry not in extensions and entry not in unit_ids:
            yield (
                f"queue.overflow[{i}]",
                f"{entry!r} is neither an extension nor a unit id "
                f"(units: {', '.join(sorted(unit_ids)) or 'none'})",
            )


def _access(raw: dict[str, Any], extensions: set[str]) -> Iterator[tuple[str, str]]:
    # S1: a role for an extension nobody has would be a login nobody can use, or a typo.
    access = raw.get("access")
    if not isinstance(access, dict):
        return
    for role in ("operators", "admins", "reports"):
        listed = access.get(role)
        if not isinstance(listed, list):
            continue
        for i, extension in enumerate(listed):
            if isinstance(extension, str) and extension not in extensions:
                yield (
                    f"access.{role}[{i}]",
                    f"{extension!r} is no extension of the directory or the operators",
                )


def _phone_ports(raw: dict[str, Any], extensions: dict[str, str]) -> Iterator[tuple[str, str]]:
    # A static phone listens on extension + offset: that must be a usable UDP port.
    asterisk = raw.get("asterisk")
    phones = asterisk.get("phones") if isinstance(asterisk, dict) else None
    if not isinstance(phones, dict) or phones.get("mode") != "static":
        return
    offset = phones.get("port_offset", 4100)
    if not isinstance(offset, int) or isinstance(offset, bool):
        return
    for ext, who in extensions.items():
        if ext.isdigit() and not 1024 <= int(ext) + offset <= 65_535:
            yield (
                "asterisk.phones.port_offset",
                f"extension {ext} of {who} would listen on port {int(ext) + offset}, "
                "outside 1024–65535",
            )


def _entries(raw: dict[str, Any], table: str) -> Iterator[tuple[int, dict[str, Any]]]:
    entries = raw.get(table)
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                yield i, entry


def _unique(raw: dict[str, Any], table: str, key: str, what: str) -> Iterator[tuple[str, str]]:
    seen: dict[Any, int] = {}
    for i, entry in _entries(raw, table):
        value = entry.get(key)
        if not isinstance(value, (str, int)):
            continue  # a wrong type is reported by the field's own validation
        if value in seen:
            yield (
                f"{table}[{i}].{key}",
                f"{what} {value!r} is already used by {table}[{seen[value]}]",
            )
        else:
            seen[value] = i


def _override_dates(overrides: dict[str, Any]) -> Iterator[tuple[str, str]]:
    # One date may have one closed entry or one day entry, never both or two:
    # otherwise one of them would be silently ignored.
    seen: dict[date, str] = {}
    for table in ("closed", "day"):
        for i, entry in _entries(overrides, table):
            day = entry.get("date")
            if not isinstance(day, date) or isinstance(day, datetime):
                continue
            here = f"overrides.{table}[{i}]"
            if day in seen:
                yield f"{here}.date", f"{day} already has an override at {seen[day]}"
            else:
                seen[day] = here


def _site_zone(raw: dict[str, Any]) -> tzinfo:
    site = raw.get("site")
    name = site.get("timezone") if isinstance(site, dict) else None
    try:
        return ZoneInfo(name if isinstance(name, str) else "Europe/Stockholm")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("Europe/Stockholm")  # the bad zone is reported at site.timezone


def _switch_order(overrides: dict[str, Any], zone: tzinfo) -> Iterator[tuple[str, str]]:
    for i, entry in _entries(overrides, "switch"):
        start, end = entry.get("start"), entry.get("end")
        if not (isinstance(start, datetime) and isinstance(end, datetime)):
            continue
        aware_start = start if start.tzinfo else start.replace(tzinfo=zone)
        aware_end = end if end.tzinfo else end.replace(tzinfo=zone)
        if aware_end <= aware_start:
            yield f"overrides.switch[{i}].end", f"end {end} is not after start {start}"
