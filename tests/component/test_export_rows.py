"""The exports' fast read (``stream_rows``, F1) against the record path it replaced: the same
bytes in every format and for every filter, in memory, SQLite and PostgreSQL, over calls
made to break it: daylight saving changes, formulas, quotes, line breaks, å/ä/ö,
``+`` numbers and leading zeros."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from itertools import cycle

import pytest

from tests import export_oracle
from tests.component.conftest import Stores
from tests.fakes import MemoryAudit
from vvk_pbx.config import Settings
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.services.export import COLUMNS, FORMATS, ExportService, Filter
from vvk_pbx.storage.audit import AuditLog

NOW = datetime(2027, 1, 2, 9, 0, tzinfo=UTC)
NAMES = (
    '=HYPERLINK("http://example.invalid/?q="&A1;"x")',
    "+1+1",
    "-2",
    "@SUM(1)",
    "\tTab",
    "\rCR",
    "Exempelsson,Anna",
    'Säger "hej"',
    "Åsa Öberg, Växeln",
    "rad\nbrytning",
    "",
    "'redan citerad",
    "semi;kolon",
    "  mellanslag  ",
)
NUMBERS = ("+46700000000", "0701234567", "+46 70", "-0701", "=0701", "007", "+4670;1", "1101")
CALLED = ("012319100", "0123191101", "1201", "1101", "=1+1")
TRACES = (
    (),
    ("[H1-H4] öppet",),
    ("[H1-H4] öppet", "[A3] a free operator rings at once"),
    ("[A1] a line", "=1+1 in a trace"),
    ('citat "x"', "komma, här"),
    ("-minus först", "radbrytning\r\nhär"),
)
# Around both of 2026's changes in Stockholm (29 March and 25 October, 01:00 UTC) and the
# turn of the year, where the local date is not the UTC date.
STARTS = (
    datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
    datetime(2026, 10, 24, 23, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 21, 0, tzinfo=UTC),
)


def dataset() -> list[CallRecord]:
    records = []
    names, numbers, called, traces = cycle(NAMES), cycle(NUMBERS), cycle(CALLED), cycle(TRACES)
    outcomes = cycle(list(Outcome))
    for start in STARTS:
        for k in range(40):
            # Each pair of calls arrives at one instant: the id orders them.
            at = start + timedelta(minutes=14 * (k // 2), microseconds=k // 2 % 4 * 250_001)
            answered = at + timedelta(seconds=k * 0.7) if k % 3 else None
            record = CallRecord(
                id=f"{start:%m}-{k // 2:03d}-{'b' if k % 2 else 'a'}{',x' if k == 5 else ''}",
                direction="internal" if k % 5 == 0 else "external",
                caller=next(numbers),
                called=next(called),
                arrived_at=at,
                caller_name=next(names),
                ring_started_at=None if k % 7 == 0 else at + timedelta(seconds=k % 2 * 1.5),
                answered_at=answered,
                answered_by=None if answered is None else ("1001", "1002", "1101")[k % 9 // 3],
                ended_at=None if k % 11 == 0 else at + timedelta(seconds=90),
                outcome=next(outcomes),
                rings=None if answered is None else k % 6,
                within_goal=None if answered is None else k % 4 < 2,
                trace=next(traces),
            )
            records.append(record)
    return records


WANTED = (
    Filter(),
    Filter(
        since=datetime(2026, 3, 29, 1, 0, tzinfo=UTC), until=datetime(2026, 10, 25, 1, tzinfo=UTC)
    ),
    Filter(direction="internal"),
    Filter(outcome="answered"),
    Filter(operator="1001"),
    Filter(unit="kommunledning"),
)


@pytest.mark.parametrize("batch", [2000, 7])
async def test_every_format_and_filter_writes_what_the_record_path_wrote(
    stores: Stores, sample_settings: Settings, batch: int
) -> None:
    await stores.calls.save_batch(dataset(), [])
    exports = ExportService(stores.calls, stores.audit, sample_settings, batch=batch)
    tz = sample_settings.site.tz
    written = []
    for wanted in WANTED:
        query = exports.query(wanted)
        # What the export read before: whole records, in the same order.
        stored = [r async for page in stores.calls.stream_calls(query) for r in page]
        assert stored, wanted
        for fmt in FORMATS:
            out = io.BytesIO()
            written.append(await exports.export(wanted, fmt, out, "test", NOW))
            assert written[-1] == len(stored)
            expected = export_oracle.export(stored, fmt, tz)
            if fmt == "xlsx":
                parts = export_oracle.xlsx_parts(out.getvalue())
                assert parts == export_oracle.xlsx_parts(expected), wanted
            else:
                assert out.getvalue() == expected, (wanted, fmt)
    if isinstance(stores.audit, MemoryAudit):
        recorded = [e.rows for e in stores.audit.exports]
    else:
        assert isinstance(stores.audit, AuditLog)
        recorded = [e.rows for e in await stores.audit.exports()]
    assert sorted(recorded) == sorted(written), "each export is in the audit log with its rows"
    assert max(written) == len(dataset())


async def test_the_csv_parses_to_equal_rows_with_formulas_neutralised_and_numbers_kept(
    stores: Stores, sample_settings: Settings
) -> None:
    records = dataset()
    await stores.calls.save_batch(records, [])
    exports = ExportService(stores.calls, stores.audit, sample_settings)
    for fmt, delimiter, encoding in (("csv", ",", "utf-8"), ("csv-sv", ";", "utf-8-sig")):
        out = io.BytesIO()
        await exports.export(Filter(), fmt, out, "test", NOW)
        rows = list(
            csv.reader(
                io.StringIO(out.getvalue().decode(encoding), newline=""), delimiter=delimiter
            )
        )
        assert len(rows) == 1 + len(records) and {len(row) for row in rows} == {len(COLUMNS)}
        by_id = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]}
        for record in records:
            row = by_id[record.id]
            for column in ("caller", "caller_name", "called"):
                cell, raw = row[column], getattr(record, column)
                if raw.startswith(("=", "+", "-", "@", "\t", "\r")) and raw != "+46700000000":
                    assert cell == "'" + raw
                else:
                    assert cell == raw, "a number keeps its + and its leading 0"
        assert by_id["03-000-a"]["arrived_at"] == "2026-03-29T00:00:00+01:00"
        assert by_id["10-001-a"]["arrived_at"] == "2026-10-25T01:14:00.250001+02:00"
