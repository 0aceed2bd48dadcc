"""Follow-up on real Asterisk (issue 12, F1, O1): callers whose From names are formulas, a
name with a comma and one with å, ä, ö, from +46700000000, through the trunk into the
controller's call log, then out as CSV, XLSX and JSON lines by ``vvk-pbx calls export``;
and the metrics of the controller and of Asterisk."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import aiohttp
from openpyxl import load_workbook

from tests.conftest import ROOT, SAMPLE_CONFIG
from tests.e2e.harness import (
    CLOSED_AT,
    CONTROLLER_API,
    VVK,
    Controller,
    Observer,
    Pbx,
    call_log,
    dialplan_app,
    place_call,
    vvk,
)

SWITCHBOARD = "012319100"
NUMBER = "+46700000000"
NAMES = (
    '=HYPERLINK("http://example.invalid/?q="&A1;"x")',
    "@SUM(1+1)",
    "-1+2",
    "Exempelsson,Anna",
    "Åsa Öberg, Växeln",
)


def _export(database: str, fmt: str) -> bytes:
    return subprocess.run(
        [
            VVK,
            "calls",
            "export",
            "--format",
            fmt,
            "--database",
            database,
            "--config",
            str(SAMPLE_CONFIG),
        ],
        capture_output=True,
        check=True,
        cwd=ROOT,
    ).stdout


async def test_callers_names_are_logged_and_exported_as_data(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(CLOSED_AT)
    ids = []
    for name in NAMES:
        # The answering machine answers; the caller hangs up after a second.
        call = await place_call(
            pbx, SWITCHBOARD, caller_number=NUMBER, caller_name=name, hold_ms=1000
        )
        entry = await observer.wait_for(
            lambda e, known=tuple(ids): (
                dialplan_app(e, "Stasis")
                and e["channel"]["caller"]["number"] == NUMBER
                and e["channel"]["id"] not in known
            ),
            10,
            f"the call from {name!r}",
        )
        # Asterisk keeps the From's quoted-pairs (\"): the controller undoes them.
        assert entry["channel"]["caller"]["name"].replace('\\"', '"') == name
        ids.append(entry["channel"]["id"])
        assert await call.wait(20) == 0
    await call_log(
        database, lambda rows: sum(1 for r in rows if r["id"] in ids and r["ended_at"]) == 5
    )
    # CSV: equal-width rows, the formulas neutralised, the number and the names intact.
    rows = list(csv.reader(io.StringIO(_export(database, "csv").decode("utf-8"))))
    header, body = rows[0], [r for r in rows[1:] if r[0] in ids]
    assert len(body) == 5 and {len(r) for r in rows} == {len(header)}
    name, caller = header.index("caller_name"), header.index("caller")
    assert [r[name] for r in body] == ["'" + n for n in NAMES[:3]] + list(NAMES[3:])
    assert {r[caller] for r in body} == {NUMBER}
    # XLSX: those cells are text, with the raw names.
    sheet = load_workbook(io.BytesIO(_export(database, "xlsx")))["Samtal"]
    cells = [r for r in sheet.iter_rows(min_row=2) if r[0].value in ids]
    assert [r[name].value for r in cells] == list(NAMES)
    assert {r[name].data_type for r in cells} == {"s"} and {r[caller].value for r in cells} == {
        NUMBER
    }
    # JSON lines: the raw strings.
    lines = [json.loads(line) for line in _export(database, "jsonl").splitlines()]
    assert [r["caller_name"] for r in lines if r["id"] in ids] == list(NAMES)
    # The controller counted the five calls the answering machine took (a reports token).
    token = vvk(database, "tokens", "create", "--role", "reports", "--name", "scraper").strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{CONTROLLER_API}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    assert 'vvk_calls_total{outcome="closed"} 5.0' in text
    assert "vvk_ari_connected 1.0" in text and "vvk_event_loop_lag_seconds" in text
    # Asterisk's own metrics (res_prometheus), on its HTTP server.
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{pbx.ari_port}/metrics") as response,
    ):
        assert response.status == 200
        assert "asterisk_core_uptime_seconds" in await response.text()
