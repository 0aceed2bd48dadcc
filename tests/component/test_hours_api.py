"""The public opening hours (H5): ``GET /hours``, ``/hours.ics`` and ``/hours.html`` need no
login, carry ETag and Cache-Control, and say what ``vvk-pbx hours`` says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from icalendar import Calendar as ICalendar
from typer.testing import CliRunner

from tests.component.test_api import api
from tests.component.test_calls import Rig, make_rig
from tests.conftest import SAMPLE_CONFIG, STHLM
from vvk_pbx.cli import app
from vvk_pbx.config import Settings


@pytest.fixture
async def rig(sample_settings: Settings) -> AsyncIterator[Rig]:
    async for one in make_rig(sample_settings, datetime(2026, 12, 1, 10, 0, tzinfo=STHLM)):
        yield one


async def test_the_hours_json_at_a_time_agrees_with_the_cli(rig: Rig) -> None:
    cli = CliRunner().invoke(
        app, ["hours", "--at", "2026-12-24T12:30", "--json", "--config", str(SAMPLE_CONFIG)]
    )
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)
    async with api(rig) as client:  # no login
        response = await client.get("/hours", params={"at": "2026-12-24T12:30"})
        assert response.status == 200
        body = await response.json()
        assert {key: body[key] for key in expected} == expected
        assert len(body["week"]) == 7
        response = await client.get("/hours", params={"at": "juldagen"})
        assert response.status == 422


async def test_the_feed_and_fragment_are_public_and_cached(rig: Rig) -> None:
    async with api(rig) as client:
        response = await client.get("/hours.ics")
        assert response.status == 200 and response.content_type == "text/calendar"
        assert response.headers["Cache-Control"] == "public, max-age=60"
        tag = response.headers["ETag"]
        feed = ICalendar.from_ical(await response.read())
        days = {str(e.decoded("dtstart"))[:10] for e in feed.walk("VEVENT")}
        assert {"2026-12-24", "2026-12-25"} <= days
        again = await client.get("/hours.ics", headers={"If-None-Match": tag})
        assert again.status == 304 and await again.read() == b""
        fragment = await client.get("/hours.html")
        assert fragment.status == 200 and fragment.content_type == "text/html"
        assert "Växeln är öppen nu." in await fragment.text()
        assert fragment.headers["ETag"] != tag
