"""The exports as they were written before the fast path (commit 87a9371): one
``CallRecord`` at a time, ``astimezone().isoformat()`` per time, ``csv.writer`` per
row. The tests hold the fast path to these bytes."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from datetime import datetime, tzinfo

from vvk_pbx.domain.calls import CallRecord
from vvk_pbx.services.export import COLUMNS, neutralise

OUTSIDE = tuple(
    COLUMNS.index(c) for c in ("caller", "caller_name", "called", "answered_by", "trace")
)


def values(record: CallRecord, tz: tzinfo) -> list[str | int | bool | None]:
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


def _neutralised(row: list[str | int | bool | None]) -> list[str | int | bool | None]:
    for index in OUTSIDE:
        cell = row[index]
        if isinstance(cell, str):
            row[index] = neutralise(cell)
    return row


def export(records: Iterable[CallRecord], fmt: str, tz: tzinfo) -> bytes:
    """``records`` (in the export's order) as ``fmt`` was written."""
    if fmt in ("csv", "csv-sv"):
        text = io.StringIO(newline="")
        swedish = fmt == "csv-sv"
        if swedish:
            text.write("\ufeff")
        writer = csv.writer(text, delimiter=";" if swedish else ",")
        writer.writerow(COLUMNS)
        writer.writerows(_neutralised(values(r, tz)) for r in records)
        return text.getvalue().encode()
    if fmt == "jsonl":
        return b"".join(
            json.dumps(dict(zip(COLUMNS, values(r, tz), strict=True)), ensure_ascii=False).encode()
            + b"\n"
            for r in records
        )
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Samtal")
    sheet.append(list(COLUMNS))
    for record in records:
        cells = []
        for value in values(record, tz):
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_parts(data: bytes) -> dict[str, bytes]:
    """A workbook's parts but the one that holds the time it was made."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return {name: book.read(name) for name in book.namelist() if name != "docProps/core.xml"}
