"""Exports of the call log (F1, S1): CSV, a Swedish-Excel CSV, JSON lines and XLSX, streamed.

Rows come from the store a page at a time (``CallLog.stream_calls``) and go out
as they come, so memory stays flat over a year of calls. Every export is
recorded in the audit log (who, when, which filter, how many rows) once it is
written.

What a spreadsheet would run is neutralised in CSV (``neutralise``): a cell
that starts with ``=``, ``+``, ``-``, ``@``, a tab or a CR gets a leading
``'`` (OWASP's "CSV injection"), except a phone number such as
``+46700000000``, which keeps its ``+``; numbers stay text, so a leading 0
stays. XLSX cells are all text cells (never formulas). JSON lines hold the raw
strings.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import IO, Any, Protocol

from vvk_pbx.config import Settings
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.domain.routing import digits
from vvk_pbx.storage.audit import Export
from vvk_pbx.storage.calllog import CallQuery

FORMATS = ("csv", "csv-sv", "jsonl", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "csv-sv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The columns of every format, in order.
COLUMNS = (
    "id",
    "arrived_at",
    "direction",
    "caller",
    "caller_name",
    "called",
    "ring_started_at",
    "answered_at",
    "answered_by",
    "ended_at",
    "outcome",
    "rings",
    "within_goal",
    "trace",
)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PHONE_NUMBER = re.compile(r"\+[0-9]{4,20}")


class ExportError(ValueError):
    """A filter or format the export cannot take; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Filter:
    """An export's filter as asked for (times aware): what the audit log records."""

    since: datetime | None = None
    until: datetime | None = None
    direction: str | None = None
    unit: str | None = None
    operator: str | None = None
    outcome: str | None = None

    def described(self, tz: tzinfo) -> dict[str, Any]:
        return {
            key: value.astimezone(tz).isoformat() if isinstance(value, datetime) else value
            for key, value in self.__dict__.items()
            if value is not None
        }


class CallSource(Protocol):
    def stream_calls(
        self, where: CallQuery, batch: int = 2000
    ) -> AsyncIterator[list[CallRecord]]: ...
    async def count_calls(self, where: CallQuery) -> int: ...


class AuditPort(Protocol):
    async def record(self, export: Export) -> None: ...


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs: ``'=SUM(1)``; a phone number
    (``+46700000000``) as it is."""
    if cell.startswith(TRIGGERS) and not PHONE_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def values(record: CallRecord, tz: tzinfo) -> list[str | int | bool | None]:
    """One call's cells in ``COLUMNS`` order: times ISO 8601 in ``tz``, the trace joined.
    Written out field by field: it runs once per exported row."""
    r = record

    def local(at: datetime | None) -> str | None:
        return None if at is None else at.astimezone(tz).isoformat()

    return [
        r.id,
        local(r.arrived_at),
        r.direction,
        r.caller,
        r.caller_name,
        r.called,
        local(r.ring_started_at),
        local(r.answered_at),
        r.answered_by,
        local(r.ended_at),
        r.outcome.value,
        r.rings,
        r.within_goal,
        " | ".join(r.trace),
    ]


# The cells that come from outside (the caller, the dialplan, the trace that quotes them):
# only these can hold a formula; the rest are our own ids, times and words.
OUTSIDE = tuple(
    COLUMNS.index(c) for c in ("caller", "caller_name", "called", "answered_by", "trace")
)


class ExportService:
    """Builds the query from a filter and writes one export to a file-like output."""

    def __init__(self, calls: CallSource, audit: AuditPort, settings: Settings) -> None:
        self.calls = calls
        self.audit = audit
        self.settings = settings
        self.tz = settings.site.tz

    def query(self, wanted: Filter) -> CallQuery:
        """The store's query for ``wanted``. Raises ``ExportError`` for a direction,
        outcome, unit or operator that does not exist, or a period that ends first."""
        if wanted.direction not in (None, "external", "internal"):
            raise ExportError("direction", "direction is external or internal")
        outcomes = [o.value for o in Outcome]
        if wanted.outcome is not None and wanted.outcome not in outcomes:
            raise ExportError("outcome", f"outcome is one of {', '.join(outcomes)}")
        if wanted.since and wanted.until and wanted.until <= wanted.since:
            raise ExportError("to", "the period ends before it starts")
        called = among = None
        if wanted.unit is not None:
            if wanted.unit not in {u.id for u in self.settings.units}:
                known = ", ".join(u.id for u in self.settings.units)
                raise ExportError("unit", f"no unit {wanted.unit!r}; the units are {known}")
            members = {p.extension for p in self.settings.unit_members(wanted.unit)}
            prefix = digits(self.settings.switchboard.direct_prefix)
            called = frozenset(members | {prefix + ext for ext in members})
            among = frozenset(members)
        if wanted.operator is not None and wanted.operator not in dict(self.settings.extensions()):
            raise ExportError("operator", f"{wanted.operator} is no extension of the config")
        return CallQuery(
            wanted.since,
            wanted.until,
            wanted.direction,
            wanted.outcome,
            wanted.operator,
            called,
            among,
        )

    async def count(self, wanted: Filter) -> int:
        return await self.calls.count_calls(self.query(wanted))

    async def export(
        self,
        wanted: Filter,
        fmt: str,
        out: IO[bytes],
        who: str,
        now: datetime,
        progress: Callable[[int], None] = lambda n: None,
    ) -> int:
        """Write the calls ``wanted`` selects to ``out`` as ``fmt`` (``FORMATS``); returns
        the rows written, recorded in the audit log as exported by ``who`` at ``now``.
        ``progress(n)`` after each page. Raises ``ExportError`` and ``StorageError``."""
        if fmt not in FORMATS:
            raise ExportError("format", f"format is one of {', '.join(FORMATS)}")
        pages = self.calls.stream_calls(self.query(wanted))
        if fmt == "xlsx":
            rows = await _xlsx(pages, self.tz, out, progress)
        elif fmt == "jsonl":
            rows = await _jsonl(pages, self.tz, out, progress)
        else:
            rows = await _csv(pages, self.tz, out, progress, swedish=fmt == "csv-sv")
        await self.audit.record(Export(now, who, fmt, wanted.described(self.tz), rows))
        return rows


class _Text:
    """A text sink over a binary output, for the csv module."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(text.encode("utf-8"))


async def _csv(
    pages: AsyncIterator[list[CallRecord]],
    tz: tzinfo,
    out: IO[bytes],
    progress: Callable[[int], None],
    swedish: bool,
) -> int:
    """RFC 4180 CSV, UTF-8; ``swedish``: ``;`` between cells and a BOM, as Excel in a
    Swedish locale reads a CSV file without asking."""
    if swedish:
        out.write("\ufeff".encode())
    writer = csv.writer(_Text(out), delimiter=";" if swedish else ",")
    writer.writerow(COLUMNS)
    rows = 0
    async for page in pages:
        writer.writerows(_neutralised(values(r, tz)) for r in page)
        rows += len(page)
        progress(rows)
    return rows


def _neutralised(row: list[str | int | bool | None]) -> list[str | int | bool | None]:
    for index in OUTSIDE:
        cell = row[index]
        if isinstance(cell, str):
            row[index] = neutralise(cell)
    return row


async def _jsonl(
    pages: AsyncIterator[list[CallRecord]],
    tz: tzinfo,
    out: IO[bytes],
    progress: Callable[[int], None],
) -> int:
    rows = 0
    async for page in pages:
        for record in page:
            line = json.dumps(
                dict(zip(COLUMNS, values(record, tz), strict=True)), ensure_ascii=False
            )
            out.write(line.encode() + b"\n")
        rows += len(page)
        progress(rows)
    return rows


async def _xlsx(
    pages: AsyncIterator[list[CallRecord]],
    tz: tzinfo,
    out: IO[bytes],
    progress: Callable[[int], None],
) -> int:
    """A write-only workbook (openpyxl streams rows to a temporary file); every string a
    text cell, so ``=HYPERLINK(...)`` is a name, never a formula, and 0701… keeps its 0."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Samtal")
    sheet.append(list(COLUMNS))
    rows = 0
    async for page in pages:
        for record in page:
            cells = []
            for value in values(record, tz):
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # openpyxl would take "=..." for a formula
                cells.append(cell)
            sheet.append(cells)
        rows += len(page)
        progress(rows)
    book.save(out)
    return rows


def default_name(fmt: str, now: datetime) -> str:
    """A file name for a download: ``samtal-2026-12-01.csv``."""
    suffix = {"csv-sv": "csv"}.get(fmt, fmt)
    return f"samtal-{now:%Y-%m-%d}.{suffix}"


__all__ = ["COLUMNS", "FORMATS", "ExportError", "ExportService", "Filter", "neutralise"]
