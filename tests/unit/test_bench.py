"""The benchmark's pure parts: its config, the open instant it runs at, and its report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import SAMPLE_CONFIG, STHLM
from vvk_pbx.bench.run import RouteRun, bench_config, markdown, next_open_instant, table_rows
from vvk_pbx.bench.wire import WireResult
from vvk_pbx.config import Settings, load
from vvk_pbx.domain.calendar import Calendar


def test_bench_config_has_the_operators_and_rings_one_at_a_time(tmp_path: Path) -> None:
    settings = load(bench_config(SAMPLE_CONFIG, 10, tmp_path))
    assert [o.extension for o in settings.operators] == [str(1001 + n) for n in range(10)]
    assert settings.queue.strategy == "longest-idle"
    assert len(settings.staff) == 12  # the rest of the sample is kept


def test_the_bench_runs_at_an_open_instant(sample_settings: Settings) -> None:
    calendar = Calendar(sample_settings.hours_policy())
    sunday_night = datetime(2026, 11, 29, 22, 0, tzinfo=STHLM)
    at = next_open_instant(calendar, sunday_night)
    assert at == datetime(2026, 11, 30, 8, 1, tzinfo=STHLM)
    assert calendar.is_open(at)
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)
    assert next_open_instant(calendar, monday) == datetime(2026, 11, 30, 10, 1, tzinfo=STHLM)


def run(route: str, rate: int, latencies: list[float], cpu: float | None) -> RouteRun:
    wire = WireResult(
        calls=len(latencies), answered=len(latencies), failed=0, latencies_ms=latencies
    )
    return RouteRun(
        route,
        rate,
        1,
        len(latencies),
        len(latencies),
        0,
        wire,
        0.5,
        cpu,
        80.0 if cpu else None,
        len(latencies) - 1 if cpu else None,
    )


def test_the_report_sets_the_controller_against_the_dialplan_at_each_rate() -> None:
    runs = [
        run("dialplan", 20, [4.0] * 98 + [6.0] * 2, None),
        run("controller", 20, [8.0] * 98 + [12.0] * 2, 0.3),
    ]
    rows = table_rows(runs)
    assert rows[0][1] == "dialplan" and rows[0][9:11] == ["–", "–"]
    controller = rows[1]
    assert controller[5] == "99"  # a person answered, by the controller's own log
    assert controller[7:11] == ["8.00", "12.00", "2.00", "2.00"]  # medians, p99s, ratios
    assert controller[12] == "3.00"  # 0.3 s of CPU over 100 calls: 3 ms a call
    text = markdown(runs, {"cpu": "test"}, datetime(2026, 11, 29, 22, 0))
    assert (
        "| 20 | controller | 100/100 | 100.00 % | 0 | 99 | 100 | 8.00 | 12.00 | 2.00 | 2.00 |"
        in text
    )
    assert "- cpu: test" in text


def test_the_feed_bench_reports_nearest_rank_percentiles_and_what_was_missed() -> None:
    from vvk_pbx.bench.feed import FeedRun
    from vvk_pbx.bench.feed import markdown as feed_markdown

    run = FeedRun(20, 10, 30, 300, 300, [float(n) for n in range(1, 101)], 3, [1.0, 2.0, 9.0])
    assert (run.percentile(0.5), run.percentile(0.99), run.percentile(0.99, run.server_ms)) == (
        50.0,
        99.0,
        9.0,
    )
    table = feed_markdown(run, {"cpu": "x"}, datetime(2026, 12, 1, 23, 0, tzinfo=UTC))
    assert "| 20 | 10 | 30 | 300 | 300 | 100 | 3 | 50.5 | 99.0 | 100.0 | 2.0 | 9.0 |" in table
    assert FeedRun(1, 1, 1, 0, 0, [], 0, []).percentile(0.5) is None
