"""Exports of the call log (F1, S1): CSV, a Swedish-Excel CSV, JSON lines and XLSX, streamed.

Rows come from the store a page at a time as plain tuples of the exported
columns (``CallLog.stream_rows``, no ``CallRecord`` built) and go out as they
come, so memory stays flat over a year of calls. Local times come from a
per-hour cache of the zone's offset (``domain.localtime.LocalIso``); CSV lines
are joined directly where csv would quote nothing (``_CsvLines``). Every export is
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
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import IO, Any, Protocol

from vvk_pbx.config import Settings
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.domain.localtime import LocalIso
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
    """The call log as the exports and the report read it (``storage.calllog.CallLog``)."""

    def stream_calls(
        self, where: CallQuery, batch: int = 2000
    ) -> AsyncIterator[list[CallRecord]]: ...
    def stream_rows(
        self, where: CallQuery, columns: Sequence[str], batch: int = 2000
    ) -> AsyncIterator[list[tuple[Any, ...]]]: ...
    async def count_calls(self, where: CallQuery) -> int: ...


class AuditPort(Protocol):
    async def record(self, export: Export) -> None: ...


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs: ``'=SUM(1)``; a phone number
    (``+46700000000``) as it is."""
    if cell.startswith(TRIGGERS) and not PHONE_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


# within_goal as the store gives it (0/1, None) -> as CSV has always written the bool.
_GOAL_CSV = {None: "", 0: "False", 1: "True"}
_GOAL = {None: None, 0: False, 1: True}
_decode = json.JSONDecoder().decode


class _Traces:
    """The trace's JSON text → its cell (joined with `` | ``; ``csv``: neutralised), kept:
    a site's calls take a handful of routes, so most traces repeat, and decoding
    costs more than the rest of a row's cells. At most ``MAX`` kept, then anew."""

    MAX = 4096

    def __init__(self, csv: bool) -> None:
        self.csv = csv
        self._cells: dict[str, str] = {}

    def cell(self, text: str) -> str:
        cell = self._cells.get(text)
        if cell is None:
            cell = " | ".join(_decode(text))
            if self.csv:
                cell = neutralise(cell)
            if len(self._cells) >= self.MAX:
                self._cells.clear()
            self._cells[text] = cell
        return cell


def values(
    row: Sequence[Any], iso: Callable[[str], str], trace_cell: Callable[[str], str]
) -> list[str | int | bool | None]:
    """One call's cells from the store's plain row (``COLUMNS``, ``stream_rows``): times
    ISO 8601 in the site's zone (``iso``: ``LocalIso.iso``), the trace joined
    (``trace_cell``: ``_Traces.cell``), the rest raw."""
    (id_, arrived, direction, caller, name, called, ring, answered, by, ended, outcome,
     rings, goal, trace) = row  # fmt: skip
    return [
        id_,
        iso(arrived),
        direction,
        caller,
        name,
        called,
        None if ring is None else iso(ring),
        None if answered is None else iso(answered),
        by,
        None if ended is None else iso(ended),
        outcome,
        rings,
        _GOAL[goal],
        trace_cell(trace),
    ]


class _Line:
    """A text sink that keeps the one line ``csv.writer.writerow`` wrote."""

    line = ""

    def write(self, text: str) -> int:
        self.line = text
        return len(text)


class _CsvLines:
    """Rows as the lines ``csv.writer(delimiter=…)`` writes, CRLF after each, the cells
    from outside neutralised. The cells are joined directly; a line whose cells hold a
    delimiter, a quote, a CR or an LF (the only cells csv would quote) is written by
    csv itself, so every line is csv's, character for character (a property test
    holds the two together)."""

    def __init__(self, delimiter: str, local: LocalIso) -> None:
        self.delimiter = delimiter
        self.local = local
        self._traces = _Traces(csv=True)
        self._sink = _Line()
        self._writer = csv.writer(self._sink, delimiter=delimiter)

    def header(self) -> str:
        self._writer.writerow(COLUMNS)
        return self._sink.line

    def page(self, rows: Sequence[Sequence[Any]]) -> str:
        # Written out field by field, with local names: it runs once per exported row.
        iso, n, trace_cell, triggers = self.local.iso, neutralise, self._traces.cell, TRIGGERS
        delimiter, goal_csv = self.delimiter, _GOAL_CSV
        # Only the cells from outside (the caller, the dialplan, the trace that quotes
        # them) can hold a formula; the rest are our own ids, times and words. The
        # test before neutralise(): most cells start with no trigger, and a call costs
        # more than the test.
        cells = [
            (
                id_,
                iso(arrived),
                direction,
                n(caller) if caller.startswith(triggers) else caller,
                n(name) if name.startswith(triggers) else name,
                n(called) if called.startswith(triggers) else called,
                "" if ring is None else iso(ring),
                "" if answered is None else iso(answered),
                "" if by is None else (n(by) if by.startswith(triggers) else by),
                "" if ended is None else iso(ended),
                outcome,
                "" if rings is None else str(rings),
                goal_csv[goal],
                trace_cell(trace),
            )
            for (
                id_,
                arrived,
                direction,
                caller,
                name,
                called,
                ring,
                answered,
                by,
                ended,
                outcome,
                rings,
                goal,
                trace,
            ) in rows
        ]
        joined = "\n".join(map(delimiter.join, cells))
        # One look at the whole page: csv quotes a cell only for a delimiter, a quote, a
        # CR or an LF in it. None anywhere (the delimiters all between cells) and every
        # line is csv's as it is; else the page goes line by line.
        width = len(COLUMNS) - 1
        if (
            joined.count(delimiter) == width * len(cells)
            and joined.count("\n") == len(cells) - 1
            and '"' not in joined
            and "\r" not in joined
        ):
            return joined.replace("\n", "\r\n") + "\r\n" if cells else ""
        lines = []
        for one in cells:
            line = delimiter.join(one)
            if line.count(delimiter) != width or '"' in line or "\r" in line or "\n" in line:
                line = self._by_csv(one)
            lines.append(line)
        lines.append("")  # the last line's CRLF
        return "\r\n".join(lines)

    def _by_csv(self, cells: Sequence[str]) -> str:
        self._writer.writerow(cells)
        return self._sink.line[:-2]  # without its CRLF


class ExportService:
    """Builds the query from a filter and writes one export to a file-like output."""

    def __init__(
        self, calls: CallSource, audit: AuditPort, settings: Settings, batch: int = 2000
    ) -> None:
        self.calls = calls
        self.audit = audit
        self.settings = settings
        self.tz = settings.site.tz
        self.batch = batch  # rows a page, read and written at once

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
        pages = self.calls.stream_rows(self.query(wanted), COLUMNS, self.batch)
        local = LocalIso(self.tz)
        if fmt == "xlsx":
            rows = await _xlsx(pages, local, out, progress)
        elif fmt == "jsonl":
            rows = await _jsonl(pages, local, out, progress)
        else:
            rows = await _csv(pages, local, out, progress, swedish=fmt == "csv-sv")
        await self.audit.record(Export(now, who, fmt, wanted.described(self.tz), rows))
        return rows


Pages = AsyncIterator[list[tuple[Any, ...]]]


async def _csv(
    pages: Pages,
    local: LocalIso,
    out: IO[bytes],
    progress: Callable[[int], None],
    swedish: bool,
) -> int:
    """RFC 4180 CSV, UTF-8; ``swedish``: ``;`` between cells and a BOM, as Excel in a
    Swedish locale reads a CSV file without asking."""
    if swedish:
        out.write("\ufeff".encode())
    lines = _CsvLines(";" if swedish else ",", local)
    out.write(lines.header().encode())
    rows = 0
    async for page in pages:
        out.write(lines.page(page).encode())
        rows += len(page)
        progress(rows)
    return rows


async def _jsonl(
    pages: Pages,
    local: LocalIso,
    out: IO[bytes],
    progress: Callable[[int], None],
) -> int:
    rows = 0
    iso, trace_cell = local.iso, _Traces(csv=False).cell
    async for page in pages:
        text = "".join(
            json.dumps(
                dict(zip(COLUMNS, values(row, iso, trace_cell), strict=True)), ensure_ascii=False
            )
            + "\n"
            for row in page
        )
        out.write(text.encode())
        rows += len(page)
        progress(rows)
    return rows


async def _xlsx(
    pages: Pages,
    local: LocalIso,
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
    iso, trace_cell = local.iso, _Traces(csv=False).cell
    async for page in pages:
        for row in page:
            cells = []
            for value in values(row, iso, trace_cell):
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # openpyxl would take "=..." for a formula
                cells.append(cell)
            sheet.append(cells)
        rows += len(page)
        progress(rows)
    # Saved to a file of its own, then copied: a reader that goes away (`| head`)
    # breaks the copy, never the zip openpyxl is writing (which would complain again
    # when collected).
    with tempfile.TemporaryFile() as spool:
        book.save(spool)
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1 << 20)
    return rows


def default_name(fmt: str, now: datetime) -> str:
    """A file name for a download: ``samtal-2026-12-01.csv``."""
    suffix = {"csv-sv": "csv"}.get(fmt, fmt)
    return f"samtal-{now:%Y-%m-%d}.{suffix}"


__all__ = ["COLUMNS", "FORMATS", "ExportError", "ExportService", "Filter", "neutralise"]
