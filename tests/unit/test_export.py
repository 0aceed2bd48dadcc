"""The call-log exports (F1, S1): CSV with formulas neutralised, the Swedish-Excel dialect,
JSON lines with the raw strings, XLSX with text cells; filters refused with a reason."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from tests import export_oracle
from tests.conftest import SAMPLE_CONFIG, STHLM
from tests.fakes import MemoryAudit, MemoryStore, plain_row
from tests.unit.flowtable import OPEN, call
from vvk_pbx.config import load
from vvk_pbx.domain.callflow.states import Queued
from vvk_pbx.domain.calls import CallRecord, Outcome, display_name
from vvk_pbx.domain.localtime import LocalIso
from vvk_pbx.services.export import (
    COLUMNS,
    ExportError,
    ExportService,
    Filter,
    _CsvLines,
    neutralise,
)

NAMES = (
    '=HYPERLINK("http://example.invalid/?q="&A1;"x")',
    "@SUM(1+1)",
    "-1+2",
    "Exempelsson,Anna",
    "Åsa Öberg, Växeln",
)
NUMBER = "+46700000000"


def _records() -> list[CallRecord]:
    base = call(Queued()).record
    return [
        replace(
            base,
            id=f"c{n}",
            caller=NUMBER,
            caller_name=name,
            called="0123191101",
            arrived_at=OPEN + timedelta(minutes=n),
            trace=("[A1] a line", "=1+1 in a trace"),
        )
        for n, name in enumerate(NAMES)
    ]


@pytest.fixture
def service() -> tuple[ExportService, MemoryAudit]:
    store, audit = MemoryStore(), MemoryAudit()
    store.calls = {r.id: r for r in _records()}
    return ExportService(store, audit, load(SAMPLE_CONFIG)), audit


async def _export(service: ExportService, fmt: str, wanted: Filter | None = None) -> bytes:
    out = io.BytesIO()
    await service.export(wanted or Filter(), fmt, out, "token:intranet", OPEN)
    return out.getvalue()


def test_cells_that_a_spreadsheet_would_run_are_neutralised_but_numbers_stay() -> None:
    for formula in (*NAMES[:3], "+1+1", "\tx", "\rx", "+46 70"):
        assert neutralise(formula) == "'" + formula
    for kept in (NUMBER, "0701234567", "Exempelsson,Anna", "Åsa", ""):
        assert neutralise(kept) == kept


async def test_csv_rows_parse_to_equal_width_with_the_number_intact(
    service: tuple[ExportService, MemoryAudit],
) -> None:
    exports, audit = service
    text = (await _export(exports, "csv")).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(COLUMNS) and len(rows) == 1 + len(NAMES)
    assert {len(row) for row in rows} == {len(COLUMNS)}
    names = [row[COLUMNS.index("caller_name")] for row in rows[1:]]
    assert names == ["'" + n for n in NAMES[:3]] + list(NAMES[3:])
    assert {row[COLUMNS.index("caller")] for row in rows[1:]} == {NUMBER}
    assert {row[COLUMNS.index("called")] for row in rows[1:]} == {"0123191101"}
    assert all(not cell.startswith(("=", "@", "-")) for row in rows for cell in row)
    [recorded] = audit.exports
    assert (recorded.who, recorded.format, recorded.rows) == ("token:intranet", "csv", 5)


async def test_the_swedish_excel_dialect_has_a_bom_and_semicolons(
    service: tuple[ExportService, MemoryAudit],
) -> None:
    raw = await _export(service[0], "csv-sv")
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert {len(row) for row in rows} == {len(COLUMNS)}
    assert rows[-1][COLUMNS.index("caller_name")] == "Åsa Öberg, Växeln"


async def test_json_lines_hold_the_raw_strings(service: tuple[ExportService, MemoryAudit]) -> None:
    lines = (await _export(service[0], "jsonl")).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["caller_name"] for r in rows] == list(NAMES)
    assert rows[0]["caller"] == NUMBER and rows[0]["trace"] == "[A1] a line | =1+1 in a trace"


async def test_xlsx_cells_are_text_never_formulas(
    service: tuple[ExportService, MemoryAudit],
) -> None:
    book = load_workbook(io.BytesIO(await _export(service[0], "xlsx")))
    sheet = book["Samtal"]
    rows = list(sheet.iter_rows(min_row=2))
    name = COLUMNS.index("caller_name")
    assert [r[name].value for r in rows] == list(NAMES)
    assert {r[name].data_type for r in rows} == {"s"}
    assert {r[COLUMNS.index("caller")].value for r in rows} == {NUMBER}


async def test_filters_select_and_bad_ones_say_why(
    service: tuple[ExportService, MemoryAudit],
) -> None:
    exports, _ = service
    later = Filter(since=OPEN + timedelta(minutes=3))
    assert len((await _export(exports, "jsonl", later)).splitlines()) == 2
    assert await exports.count(Filter(unit="kommunledning")) == 5, "0123191101 is 1101's"
    assert await exports.count(Filter(unit="bygg-miljo")) == 0
    for wanted, field in (
        (Filter(direction="sideways"), "direction"),
        (Filter(outcome="lost"), "outcome"),
        (Filter(unit="nope"), "unit"),
        (Filter(operator="4711"), "operator"),
        (Filter(since=OPEN, until=OPEN), "to"),
    ):
        with pytest.raises(ExportError) as refused:
            exports.query(wanted)
        assert refused.value.field == field
    with pytest.raises(ExportError, match="format is one of"):
        await _export(exports, "pdf")


def test_a_display_name_loses_the_quoted_pairs_asterisk_keeps() -> None:
    assert display_name(r"=HYPERLINK(\"x\")") == '=HYPERLINK("x")'
    assert display_name(r"back\\slash") == "back\\slash"
    assert display_name("Åsa Öberg, Växeln") == "Åsa Öberg, Växeln"


TEXT = st.text(max_size=12)
INSTANT = st.datetimes(
    min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
RECORD = st.builds(
    CallRecord,
    id=TEXT,
    direction=TEXT,
    caller=st.one_of(TEXT, st.from_regex(r"\A\+?0?[0-9 ]{0,14}\Z")),
    called=TEXT,
    arrived_at=INSTANT,
    caller_name=TEXT,
    ring_started_at=st.none() | INSTANT,
    answered_at=st.none() | INSTANT,
    answered_by=st.none() | TEXT,
    ended_at=st.none() | INSTANT,
    outcome=st.sampled_from(Outcome),
    rings=st.none() | st.integers(-5, 10**6),
    within_goal=st.none() | st.booleans(),
    trace=st.lists(TEXT, max_size=3).map(tuple),
)


@given(records=st.lists(RECORD, max_size=6), fmt=st.sampled_from(["csv", "csv-sv"]))
def test_csv_lines_are_what_csv_writer_wrote_for_any_cells(
    records: list[CallRecord], fmt: str
) -> None:
    lines = _CsvLines(";" if fmt == "csv-sv" else ",", LocalIso(STHLM))
    written = lines.header() + lines.page([plain_row(r, COLUMNS) for r in records])
    expected = export_oracle.export(records, fmt, STHLM).decode().removeprefix("\ufeff")
    assert written == expected
