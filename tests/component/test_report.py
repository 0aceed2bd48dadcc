"""The monthly report (F1) over a generated month of calls in SQLite, checked figure by figure
against the export (JSON lines) and the ledger's JSON, recomputed here on their own."""

from __future__ import annotations

import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.component.conftest import _database
from tests.conftest import SAMPLE_CONFIG, STHLM
from vvk_pbx.config import load
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.calls import CallRecord, Outcome
from vvk_pbx.domain.report import mmss
from vvk_pbx.domain.routing import Action, Route, Step
from vvk_pbx.domain.voicemail import Message, Status
from vvk_pbx.services import views
from vvk_pbx.services.export import ExportService, Filter
from vvk_pbx.services.report import build, render
from vvk_pbx.storage.audit import AuditLog
from vvk_pbx.storage.calllog import CallLog
from vvk_pbx.storage.voicemail import MessageStore

SETTINGS = load(SAMPLE_CONFIG)
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=STHLM)
ROUTE = Route(Action.OPERATOR_QUEUE, None, (Step("test", "generated"),), external=True)
CYCLE_MS, GOAL = SETTINGS.ring.cycle_ms, SETTINGS.ring.goal_rings
OUTCOMES = [
    Outcome.CLOSED,
    Outcome.VOICEMAIL,
    Outcome.REFERRED,
    Outcome.NO_ANSWER,
    Outcome.FALLBACK,
]


def month_of_calls(seed: int = 11) -> tuple[list[CallRecord], list[Message]]:
    """November 2026: about 700 calls at random, answered, abandoned and the rest, across
    the DST-free month; callers who gave up and some who called again; 40 messages."""
    rng = random.Random(seed)
    staff = [p.extension for p in SETTINGS.staff]
    records = []
    for n in range(700):
        day = 1 + rng.randrange(30)
        at = datetime(2026, 11, day, rng.randrange(7, 17), rng.randrange(60), tzinfo=STHLM)
        caller = f"070{rng.randrange(40):07d}"
        called = rng.choice(["012319100", *(f"012319{e}" for e in staff)])
        direction = "external" if rng.random() < 0.8 else "internal"
        record = replace(
            CallRecord.arrive(f"c{n:04d}", caller, called, at, ROUTE, f"Uppringare {n}"),
            direction=direction,
        )
        roll = rng.random()
        if roll < 0.6:
            who = rng.choice(["1001", "1002", *staff[:3]])
            wait = timedelta(seconds=rng.uniform(1, 40))
            record = record.answered(at + wait, who, CYCLE_MS, GOAL).ended(at + wait * 3)
        elif roll < 0.8:
            record = record.ended(at + timedelta(seconds=rng.uniform(5, 60)))  # abandoned
        else:
            record = record.ended(at + timedelta(seconds=30), rng.choice(OUTCOMES))
        records.append(record)
    records.sort(key=lambda r: (r.arrived_at, r.id))
    calendar = Calendar(SETTINGS.hours_policy())
    messages = []
    for n in range(40):
        left = datetime(2026, 11, 1 + rng.randrange(30), 10, tzinfo=STHLM)
        deadline = calendar.add_working_days(left, 2)
        message = Message(f"m{n}", rng.choice(staff), "0701", None, left, 5.0, f"vm-{n}", deadline)
        roll = rng.random()
        if roll < 0.5:
            message = replace(
                message, status=Status.CALLED_BACK, called_back_at=left + timedelta(hours=3)
            )
        elif roll < 0.7:
            message = replace(
                message, status=Status.CALLED_BACK, called_back_at=deadline + timedelta(days=1)
            )
        messages.append(message)
    return records, messages


@pytest.fixture
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CallLog]:
    async with _database("sqlite", request, tmp_path) as store:
        yield store


def _recomputed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of the report, from the export's rows alone."""
    unit_of = {p.extension: p.unit for p in SETTINGS.staff}
    unit_of_number = {**unit_of, **{f"012319{e}": u for e, u in unit_of.items()}}
    by: dict[str, dict[Any, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    rings: Counter[int] = Counter()
    gave_up: dict[str, str] = {}
    for row in rows:
        counts = row["within_goal"] is not None or row["outcome"] == "abandoned"
        within = bool(row["within_goal"])
        local = datetime.fromisoformat(row["arrived_at"])
        unit = unit_of_number.get(row["called"]) or unit_of.get(row["answered_by"] or "")
        keys = [("total", None), ("day", local.date()), ("hour", local.hour)]
        if row["answered_by"] in ("1001", "1002"):
            keys.append(("operator", row["answered_by"]))
        if unit is not None:
            keys.append(("unit", unit))
        if counts:
            for kind, key in keys:
                by[kind][key][0] += 1
                by[kind][key][1] += within
        if row["rings"] is not None and row["within_goal"] is not None:
            rings[min(row["rings"], 8)] += 1
        if row["outcome"] == "abandoned" and row["direction"] == "external":
            gave_up[row["caller"]] = row["id"]
        elif row["answered_at"] is not None:
            gave_up.pop(row["caller"], None)
    return {
        "by": by,
        "rings": rings,
        "not_reached": sorted(gave_up.values()),
        "outcomes": Counter(row["outcome"] for row in rows),
    }


async def test_every_figure_of_the_report_comes_again_from_the_export(log: CallLog) -> None:
    records, messages = month_of_calls()
    await log.save_batch(records, [])
    ledger = MessageStore(log.engine)
    for message in messages:
        await ledger.add(message)
    december = CallRecord.arrive("dec", "0701", "012319100", NOW, ROUTE)
    await log.save_batch([december], [])  # another month: in neither
    report = await build("2026-11", log, ledger, SETTINGS, NOW)
    out = io.BytesIO()
    exports = ExportService(log, AuditLog(log.engine), SETTINGS)
    start, end = datetime(2026, 11, 1, tzinfo=STHLM), datetime(2026, 12, 1, tzinfo=STHLM)
    await exports.export(Filter(start, end), "jsonl", out, "test", NOW)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    again = _recomputed(rows)
    assert report.calls == len(rows) == 700
    assert len(report.by_unit) >= 3 and set(report.by_operator) == {"1001", "1002"}
    assert report.not_reached and report.callbacks.overdue and report.fallback, "none vacuous"
    assert (report.total.counted, report.total.within) == tuple(again["by"]["total"][None])
    for kind, figures in (
        ("day", report.by_day),
        ("hour", report.by_hour),
        ("operator", report.by_operator),
        ("unit", report.by_unit),
    ):
        shown = {key: [s.counted, s.within] for key, s in figures.items() if s.counted}
        assert shown == dict(again["by"][kind]), kind
    assert report.rings == {n: again["rings"].get(n, 0) for n in range(1, 9)}
    assert sorted(r.id for r in report.not_reached) == again["not_reached"]
    assert report.outcomes == dict(again["outcomes"])
    assert report.abandoned == again["outcomes"]["abandoned"]
    assert report.no_besked == again["outcomes"]["abandoned"] + again["outcomes"]["no_answer"]
    assert report.fallback == again["outcomes"]["fallback"]
    waits = [
        (datetime.fromisoformat(r["answered_at"]) - datetime.fromisoformat(r["arrived_at"]))
        for r in rows
        if r["answered_at"]
    ]
    mean = sum(w.total_seconds() for w in waits) / len(waits)
    assert f"Genomsnittlig tid till svar {mmss(mean)}" in render(report, SETTINGS)
    # Callbacks, from the ledger's JSON as `vvk-pbx callbacks --json` shows it.
    shown = [views.message_json(m, NOW, STHLM) for m in await ledger.ledger()]
    in_time = sum(1 for m in shown if m["status"] == "called_back" and not m["late"])
    late = sum(1 for m in shown if m["late"])
    overdue = [m for m in shown if m["overdue"]]
    assert (report.callbacks.left, report.callbacks.in_time, report.callbacks.late) == (
        40,
        in_time,
        late,
    )
    assert report.callbacks.overdue == len(overdue)
    assert report.overdue_by_person == dict(Counter(m["extension"] for m in overdue).most_common())
    # The page: self-contained, every figure there, nothing fetched.
    page = render(report, SETTINGS)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    total = report.total.ratio
    assert total is not None and f"{total * 100:.0f} % besvarade inom 4 signaler" in page
    assert page.count("<svg") == 5


async def test_a_bad_month_is_refused(log: CallLog) -> None:
    from vvk_pbx.services.report import ReportError

    for month in ("2026-13", "november", "2026-1", ""):
        with pytest.raises(ReportError):
            await build(month, log, MessageStore(log.engine), SETTINGS, NOW)


def test_average_durations_count_real_seconds_across_the_dst_change() -> None:
    from vvk_pbx.domain.report import average, mmss, month_report

    # 25 Oct 2026: the clocks go back from 03:00 to 02:00. Arrived 02:50 summer time,
    # answered 02:10 winter time: 20 minutes later, not -40.
    arrived = datetime(2026, 10, 25, 2, 50, tzinfo=STHLM, fold=0)
    answered = datetime(2026, 10, 25, 2, 10, tzinfo=STHLM, fold=1)
    record = CallRecord.arrive("dst", "0701", "012319100", arrived, ROUTE)
    record = replace(record, answered_at=answered, answered_by="1001", outcome=Outcome.ANSWERED)
    # (Adding to a local time is wall-clock arithmetic: add in UTC.)
    record = replace(record, ended_at=answered.astimezone(UTC) + timedelta(seconds=75))
    report = month_report("2026-10", [record], [], STHLM, NOW, GOAL, ["1001"], {}, {})
    assert report.answer_s == [1200.0] and mmss(average(report.answer_s)) == "20:00"
    assert mmss(average(report.talk_s)) == "1:15" and mmss(None) == "–"
