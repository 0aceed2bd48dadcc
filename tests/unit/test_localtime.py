"""The call log's UTC text turned local (``domain.localtime``): what ``astimezone().isoformat()``
writes, across daylight saving changes and in zones whose offsets are not whole hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import STHLM
from vvk_pbx.domain.localtime import LocalIso, utc_instant
from vvk_pbx.storage.calllog import UTC_TEXT


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        # Spring forward in Stockholm: 02:00 CET is 03:00 CEST (01:00 UTC).
        ("2026-03-29 00:59:59.999999", "2026-03-29T01:59:59.999999+01:00"),
        ("2026-03-29 01:00:00.000000", "2026-03-29T03:00:00+02:00"),
        ("2026-03-29 01:00:00.000001", "2026-03-29T03:00:00.000001+02:00"),
        # Fall back: 02:30 comes twice, first in summer time, then in winter time.
        ("2026-10-25 00:30:00.000000", "2026-10-25T02:30:00+02:00"),
        ("2026-10-25 00:59:59.500000", "2026-10-25T02:59:59.500000+02:00"),
        ("2026-10-25 01:00:00.000000", "2026-10-25T02:00:00+01:00"),
        ("2026-10-25 01:30:00.000000", "2026-10-25T02:30:00+01:00"),
        # A local date that is not the UTC date, both ways round the year.
        ("2026-12-31 23:15:00.250000", "2027-01-01T00:15:00.250000+01:00"),
        ("2026-06-30 22:00:00.000000", "2026-07-01T00:00:00+02:00"),
        # Not the call log's own form: the exact way, the same answer.
        ("2026-06-30 22:00:00", "2026-07-01T00:00:00+02:00"),
        ("2026-06-30T22:00:00.5", "2026-07-01T00:00:00.500000+02:00"),
        ("2026-06-30 23:00:00+01:00", "2026-07-01T00:00:00+02:00"),
    ],
)
def test_utc_text_is_written_as_isoformat_writes_stockholm_time(utc: str, local: str) -> None:
    times = LocalIso(STHLM)
    assert times.iso(utc) == local
    assert times.iso(utc) == local, "the second time from the hour's cache"
    assert utc_instant(utc).astimezone(STHLM).isoformat() == local


def test_an_hour_with_a_change_inside_it_or_a_half_hour_offset_takes_the_exact_way() -> None:
    # Moncton changed at 00:01 local time until 2006: at 04:01 UTC, inside an hour.
    moncton = LocalIso(ZoneInfo("America/Moncton"))
    assert moncton.iso("2006-04-02 04:00:00.000000") == "2006-04-02T00:00:00-04:00"
    assert moncton.iso("2006-04-02 04:30:00.000000") == "2006-04-02T01:30:00-03:00"
    # Lord Howe Island moves its clocks by 30 minutes; Kathmandu is at +05:45.
    lord_howe = LocalIso(ZoneInfo("Australia/Lord_Howe"))
    assert lord_howe.iso("2026-04-04 14:59:00.000000") == "2026-04-05T01:59:00+11:00"
    assert lord_howe.iso("2026-04-04 15:00:00.000000") == "2026-04-05T01:30:00+10:30"
    assert LocalIso(ZoneInfo("Asia/Kathmandu")).iso("2026-01-01 00:00:00.000000") == (
        "2026-01-01T05:45:00+05:45"
    )
    # Sweden kept the time of Stockholm's observatory (+01:00:14) until 1900.
    assert LocalIso(STHLM).iso("1899-12-31 22:47:47.000000") == "1899-12-31T23:48:01+01:00:14"


def test_a_text_that_is_no_time_is_refused() -> None:
    times = LocalIso(STHLM)
    for text in ("", "yesterday", "2026-13-01 00:00:00.000000"):
        with pytest.raises(ValueError):
            times.iso(text)


ZONES = st.sampled_from(
    [
        "Europe/Stockholm",
        "UTC",
        "America/New_York",
        "America/St_Johns",
        "America/Moncton",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Pacific/Apia",
    ]
)


@given(
    at=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    zone=ZONES,
    again=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3)),
)
def test_any_time_in_any_zone_is_what_astimezone_writes(
    at: datetime, zone: str, again: timedelta
) -> None:
    tz = ZoneInfo(zone)
    times = LocalIso(tz)
    for instant in (at, at + again):  # a second time, often in the same hour
        utc = instant.replace(tzinfo=UTC)
        assert times.iso(utc.strftime(UTC_TEXT)) == utc.astimezone(tz).isoformat()
