"""``GET /calls/export`` (F1, S1): for operators and reports, streamed as a download, in the
audit log with who asked; a bad filter is a 422 before anything is sent."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from tests.component.test_api import api
from tests.component.test_calls import OPEN, Rig, answered_by_operator, make_rig, stasis
from vvk_pbx.config import Settings
from vvk_pbx.domain.access import Role
from vvk_pbx.domain.pins import PinRecord


@pytest.fixture
async def rig(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for one in make_rig(sample_settings, OPEN):
        yield one


async def test_reports_download_the_log_as_csv_and_the_export_is_audited(rig: Rig) -> None:
    await answered_by_operator(rig, "t1")
    await rig.recorder.flush()
    async with api(rig, Role.REPORTS, name="intranet") as client:
        response = await client.get(
            "/calls/export", params={"format": "csv-sv", "from": "2026-11-30", "operator": "1001"}
        )
        assert response.status == 200, await response.text()
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="samtal-2026-11-30.csv"'
        )
        text = (await response.read()).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert [row[0] for row in rows[1:]] == ["t1"]
        for params, reason in (
            ({"format": "pdf"}, "format: Input should be 'csv', 'csv-sv', 'jsonl' or 'xlsx'"),
            ({"unit": "nope"}, "no unit 'nope'"),
            ({"from": "yesterday"}, "is not a time"),
            ({"colour": "red"}, "colour: unknown parameter"),
        ):
            response = await client.get("/calls/export", params=params)
            assert response.status == 422, params
            assert reason in (await response.json())["message"]
    [export] = rig.audit.exports
    assert (export.who, export.format, export.rows) == ("token:intranet", "csv-sv", 1)
    assert export.filter == {"since": "2026-11-30T00:00:00+01:00", "operator": "1001"}


async def test_staff_may_not_export(rig: Rig) -> None:
    async with api(rig) as client:
        assert (await client.get("/calls/export")).status == 401
    rig.pins.records["1101"] = PinRecord.create("1101", "4711")
    async with api(rig) as client:
        await client.post("/login", json={"extension": "1101", "pin": "4711"})
        response = await client.get("/calls/export")
        assert response.status == 403
    assert rig.audit.exports == []


async def test_metrics_count_ended_calls_for_a_scraper_with_a_token(rig: Rig) -> None:
    async with api(rig) as client:
        assert (await client.get("/metrics")).status == 401
    async with api(rig, Role.REPORTS, name="prometheus") as client:
        await answered_by_operator(rig, "t1")  # answered 3 s after arrival: ring 1
        await rig.event({"type": "StasisEnd", "channel": {"id": "t1"}})
        await rig.event(stasis("t2", OPEN, "inbound", "012319100"))
        await rig.event({"type": "StasisEnd", "channel": {"id": "t2"}})  # gave up
        response = await client.get("/metrics")
        assert response.status == 200
        text = await response.text()
    assert 'vvk_calls_total{outcome="answered"} 1.0' in text
    assert 'vvk_calls_total{outcome="abandoned"} 1.0' in text
    assert 'vvk_calls_total{outcome="voicemail"} 0.0' in text, "every outcome from the start"
    assert 'vvk_answer_seconds_bucket{le="6.0"} 1.0' in text  # the first ring's boundary
    assert "vvk_answered_within_goal_total 1.0" in text
    assert "vvk_goal_counted_total 2.0" in text


async def test_reports_get_the_monthly_report_as_a_page(rig: Rig) -> None:
    await answered_by_operator(rig, "t1")
    await rig.recorder.flush()
    async with api(rig, Role.REPORTS) as client:
        response = await client.get("/report", params={"month": "2026-11"})
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        assert "Uppföljning av telefonin – 2026-11" in page and "100 % besvarade" in page
        response = await client.get("/report", params={"month": "nov"})
        assert response.status == 422 and "not a month" in (await response.json())["message"]
    async with api(rig) as client:
        assert (await client.get("/report", params={"month": "2026-11"})).status == 401
