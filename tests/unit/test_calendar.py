"""Opening hours (H1–H4) and working days (V2), table-driven over 2026–2028."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import STHLM
from vvk_pbx.domain.calendar import (
    Calendar,
    ClosedDay,
    DateHours,
    DayKind,
    HoursPolicy,
    ManualSwitch,
    PeriodHours,
    TimeRange,
    UnsupportedYearError,
)

NINE_TO_FIVE = (TimeRange(time(8), time(16)),)
LUNCH = TimeRange(time(12), time(13))
HALF = (TimeRange(time(8), time(12)),)


def policy(**overrides: object) -> HoursPolicy:
    """The policy's own hours (H1, H2), with optional extra fields."""
    fields: dict[str, object] = {
        "timezone": STHLM,
        "weekly": (NINE_TO_FIVE,) * 5 + ((), ()),
        "lunch": LUNCH,
        "half_day": HALF,
    }
    fields.update(overrides)
    return HoursPolicy(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cal() -> Calendar:
    return Calendar(policy())


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STHLM)


# ---- H2: every half day of 2026, with its reason ---------------------------------

HALF_DAYS_2026 = [
    ("2026-01-05", "Trettondagsafton"),
    ("2026-04-02", "Dag före Långfredagen"),
    ("2026-04-30", "Valborgsmässoafton"),
    ("2026-05-13", "Dag före Kristi himmelsfärdsdag"),
    ("2026-06-05", "Dag före Nationaldagen"),
    ("2026-06-19", "Midsommarafton"),
    ("2026-10-30", "Allahelgonsafton"),
    ("2026-12-24", "Julafton"),
    ("2026-12-31", "Nyårsafton"),
]


@pytest.mark.parametrize(("day", "reason"), HALF_DAYS_2026)
def test_half_day_2026_is_open_eight_to_noon(cal: Calendar, day: str, reason: str) -> None:
    sched = cal.schedule(date.fromisoformat(day))
    assert sched.kind is DayKind.HALF_DAY
    assert sched.ranges == HALF
    assert sched.reason == reason


def test_2026_has_exactly_these_half_days(cal: Calendar) -> None:
    found = [d.day.isoformat() for d in cal.differing_days(2026) if d.kind is DayKind.HALF_DAY]
    assert found == [d for d, _ in HALF_DAYS_2026]


def test_half_day_before_ascension_reads_like_the_issue(cal: Calendar) -> None:
    assert (
        cal.schedule(date(2026, 5, 13)).describe() == "Dag före Kristi himmelsfärdsdag: 08:00–12:00"
    )


@pytest.mark.parametrize(
    "day",
    # The holidays package's bank list has these as short days; the policy does not.
    ["2026-12-23", "2026-06-18", "2026-05-22", "2026-12-30", "2026-05-15"],
)
def test_bank_short_days_are_normal_days(cal: Calendar, day: str) -> None:
    sched = cal.schedule(date.fromisoformat(day))
    assert sched.kind is DayKind.NORMAL
    assert sched.ranges == (TimeRange(time(8), time(12)), TimeRange(time(13), time(16)))


# ---- H1–H2: a table of days across 2026–2028 --------------------------------------

DAY_TABLE = [
    # date, kind, ranges as text, reason
    ("2026-01-01", DayKind.RED_DAY, "stängt", "Nyårsdagen"),
    ("2026-01-03", DayKind.NORMAL, "stängt", "Lördag"),
    ("2026-01-04", DayKind.NORMAL, "stängt", "Söndag"),
    ("2026-06-06", DayKind.RED_DAY, "stängt", "Nationaldagen"),
    ("2026-06-19", DayKind.HALF_DAY, "08:00–12:00", "Midsommarafton"),
    ("2026-12-24", DayKind.HALF_DAY, "08:00–12:00", "Julafton"),
    ("2026-12-25", DayKind.RED_DAY, "stängt", "Juldagen"),
    ("2026-12-28", DayKind.NORMAL, "08:00–12:00, 13:00–16:00", "Vardag"),
    ("2027-03-25", DayKind.HALF_DAY, "08:00–12:00", "Dag före Långfredagen"),
    ("2027-03-29", DayKind.RED_DAY, "stängt", "Annandag påsk"),
    ("2027-05-05", DayKind.HALF_DAY, "08:00–12:00", "Dag före Kristi himmelsfärdsdag"),
    ("2027-06-25", DayKind.HALF_DAY, "08:00–12:00", "Midsommarafton"),
    ("2027-12-24", DayKind.HALF_DAY, "08:00–12:00", "Julafton"),
    ("2027-12-31", DayKind.HALF_DAY, "08:00–12:00", "Nyårsafton"),
    ("2028-01-05", DayKind.HALF_DAY, "08:00–12:00", "Trettondagsafton"),
    ("2028-04-13", DayKind.HALF_DAY, "08:00–12:00", "Dag före Långfredagen"),
    ("2028-04-14", DayKind.RED_DAY, "stängt", "Långfredagen"),
    ("2028-05-24", DayKind.HALF_DAY, "08:00–12:00", "Dag före Kristi himmelsfärdsdag"),
    ("2028-06-06", DayKind.RED_DAY, "stängt", "Nationaldagen"),
    ("2028-06-23", DayKind.HALF_DAY, "08:00–12:00", "Midsommarafton"),
    # Christmas Eve 2028 is a Sunday: the Friday before is a normal day, and
    # Christmas Day and Boxing Day (Mon, Tue) are closed.
    ("2028-12-22", DayKind.NORMAL, "08:00–12:00, 13:00–16:00", "Vardag"),
    ("2028-12-25", DayKind.RED_DAY, "stängt", "Juldagen"),
    ("2028-12-26", DayKind.RED_DAY, "stängt", "Annandag jul"),
    ("2028-12-29", DayKind.NORMAL, "08:00–12:00, 13:00–16:00", "Vardag"),
]


@pytest.mark.parametrize(("day", "kind", "hours", "reason"), DAY_TABLE)
def test_day_table(cal: Calendar, day: str, kind: DayKind, hours: str, reason: str) -> None:
    sched = cal.schedule(date.fromisoformat(day))
    assert (sched.kind, sched.describe()) == (kind, f"{reason}: {hours}")


# ---- status at instants -------------------------------------------------------------

STATUS_TABLE = [
    # local instant, open, next change (ISO with offset)
    # H1 lunch edges on an ordinary Monday
    ("2026-11-30T07:59:59", False, "2026-11-30T08:00:00+01:00"),
    ("2026-11-30T08:00:00", True, "2026-11-30T12:00:00+01:00"),
    ("2026-11-30T11:59:59", True, "2026-11-30T12:00:00+01:00"),
    ("2026-11-30T12:00:00", False, "2026-11-30T13:00:00+01:00"),
    ("2026-11-30T12:59:59", False, "2026-11-30T13:00:00+01:00"),
    ("2026-11-30T13:00:00", True, "2026-11-30T16:00:00+01:00"),
    ("2026-11-30T15:59:59", True, "2026-11-30T16:00:00+01:00"),
    ("2026-11-30T16:00:00", False, "2026-12-01T08:00:00+01:00"),
    # H4: the days daylight saving time starts and ends are Sundays
    ("2026-03-29T07:59:00", False, "2026-03-30T08:00:00+02:00"),
    ("2026-03-29T08:00:00", False, "2026-03-30T08:00:00+02:00"),
    ("2026-10-25T07:59:00", False, "2026-10-26T08:00:00+01:00"),
    ("2026-10-25T08:00:00", False, "2026-10-26T08:00:00+01:00"),
    # H2 half days and red days
    ("2026-05-13T11:00:00", True, "2026-05-13T12:00:00+02:00"),
    ("2026-05-13T12:30:00", False, "2026-05-15T08:00:00+02:00"),
    ("2026-12-24T11:59:00", True, "2026-12-24T12:00:00+01:00"),
    ("2026-12-24T12:00:00", False, "2026-12-28T08:00:00+01:00"),
    ("2026-06-19T13:30:00", False, "2026-06-22T08:00:00+02:00"),
    ("2027-01-01T10:00:00", False, "2027-01-04T08:00:00+01:00"),
    ("2026-12-31T11:00:00", True, "2026-12-31T12:00:00+01:00"),
    # a weekend
    ("2026-12-05T10:00:00", False, "2026-12-07T08:00:00+01:00"),
]


@pytest.mark.parametrize(("at", "is_open", "next_change"), STATUS_TABLE)
def test_status_table(cal: Calendar, at: str, is_open: bool, next_change: str) -> None:
    status = cal.status(local(at))
    assert status.is_open is is_open
    assert status.next_change is not None
    assert status.next_change.isoformat() == next_change


def test_status_reason_names_lunch(cal: Calendar) -> None:
    assert cal.status(local("2026-11-30T12:15")).reason == "Stängt – lunch 12:00–13:00"


def test_status_reason_after_half_day_names_the_rule(cal: Calendar) -> None:
    reason = cal.status(local("2026-05-13T12:30")).reason
    assert reason == "Stängt – Dag före Kristi himmelsfärdsdag: 08:00–12:00"


def test_status_accepts_any_offset(cal: Calendar) -> None:
    # 07:30 UTC on a Monday in winter is 08:30 in Stockholm.
    status = cal.status(datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    assert status.is_open
    assert status.at.utcoffset() == timedelta(hours=1)


def test_naive_instant_is_refused(cal: Calendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.status(datetime(2026, 11, 30, 9, 0))


@pytest.mark.parametrize(
    ("day", "opens_utc"),
    [("2026-03-29", "2026-03-29T06:00:00+00:00"), ("2026-10-25", "2026-10-25T07:00:00+00:00")],
)
def test_sunday_hours_on_dst_days_open_at_local_eight(day: str, opens_utc: str) -> None:
    # With Sunday hours, the DST days themselves open at 08:00 local time.
    cal = Calendar(policy(weekly=(NINE_TO_FIVE,) * 7))
    d = date.fromisoformat(day)
    assert not cal.is_open(cal.local_instant(d, time(7, 59)))
    assert cal.is_open(cal.local_instant(d, time(8, 0)))
    change = cal.next_change(cal.local_instant(d, time(7, 59)))
    assert change is not None
    assert change.astimezone(UTC).isoformat() == opens_utc


def test_nonexistent_wall_time_maps_an_hour_later() -> None:
    cal = Calendar(policy())
    at = cal.local_instant(date(2026, 3, 29), time(2, 30))
    assert at.isoformat() == "2026-03-29T03:30:00+02:00"


# ---- H3 overrides -----------------------------------------------------------------------


def test_closed_date_override_wins_over_weekday() -> None:
    cal = Calendar(policy(closed_days=(ClosedDay(date(2026, 8, 21), "Personaldag"),)))
    sched = cal.schedule(date(2026, 8, 21))
    assert (sched.kind, sched.ranges, sched.reason) == (DayKind.CLOSED_OVERRIDE, (), "Personaldag")


def test_date_hours_can_open_a_red_day() -> None:
    hours = (TimeRange(time(9), time(12)),)
    cal = Calendar(policy(date_hours=(DateHours(date(2026, 6, 6), hours, "Valdag"),)))
    assert cal.schedule(date(2026, 6, 6)).ranges == hours
    assert cal.is_open(local("2026-06-06T10:00"))


def test_period_replaces_weekdays_but_red_days_stay_closed() -> None:
    summer = PeriodHours(
        first=date(2026, 6, 1),
        last=date(2026, 8, 31),
        weekdays=frozenset(range(5)),
        ranges=(TimeRange(time(9), time(15)),),
        reason="Sommartid",
    )
    cal = Calendar(policy(periods=(summer,)))
    assert cal.schedule(date(2026, 7, 1)).describe() == "Sommartid: 09:00–15:00"
    assert not cal.schedule(date(2026, 7, 4)).ranges  # a Saturday stays closed
    assert cal.schedule(date(2026, 6, 6)).kind is DayKind.RED_DAY
    assert cal.schedule(date(2026, 6, 19)).kind is DayKind.HALF_DAY


def test_shortest_period_wins() -> None:
    long = PeriodHours(
        date(2026, 6, 1),
        date(2026, 8, 31),
        frozenset(range(5)),
        (TimeRange(time(9), time(15)),),
        "Sommar",
    )
    short = PeriodHours(
        date(2026, 7, 6),
        date(2026, 7, 10),
        frozenset(range(5)),
        (TimeRange(time(10), time(11)),),
        "Inventering",
    )
    cal = Calendar(policy(periods=(long, short)))
    assert cal.schedule(date(2026, 7, 7)).reason == "Inventering"
    assert cal.schedule(date(2026, 7, 13)).reason == "Sommar"


def test_manual_closed_switch_ends_by_itself() -> None:
    switch = ManualSwitch(
        is_open=False,
        start=local("2026-12-01T10:00"),
        end=local("2026-12-01T11:30"),
        reason="Brandövning",
    )
    cal = Calendar(policy(switches=(switch,)))
    during = cal.status(local("2026-12-01T10:15"))
    assert not during.is_open
    assert during.reason.startswith("Manuellt stängt till 2026-12-01 11:30")
    assert during.next_change == local("2026-12-01T11:30")
    assert cal.status(local("2026-12-01T09:59")).next_change == local("2026-12-01T10:00")
    assert cal.is_open(local("2026-12-01T11:30"))


def test_manual_open_switch_opens_at_night() -> None:
    switch = ManualSwitch(is_open=True, start=None, end=local("2026-12-02T02:00"), reason="Storm")
    cal = Calendar(policy(switches=(switch,)))
    status = cal.status(local("2026-12-01T22:00"))
    assert status.is_open
    assert status.next_change == local("2026-12-02T02:00")


def test_never_open_reports_no_next_change() -> None:
    cal = Calendar(policy(weekly=((),) * 7))
    assert cal.status(local("2026-12-01T10:00")).next_change is None


def test_year_listing_holds_only_days_that_differ(cal: Calendar) -> None:
    days = {d.day.isoformat(): d for d in cal.differing_days(2026)}
    assert "2026-12-23" not in days
    assert "2026-06-06" not in days  # a Saturday holiday does not change a closed Saturday
    assert days["2026-05-14"].kind is DayKind.RED_DAY


# ---- V2 working days --------------------------------------------------------------------

WORKING_DAYS = [
    # arrival (local), n, deadline (local, ISO with offset)
    ("2026-11-30T10:00", 2, "2026-12-02T10:00:00+01:00"),  # Monday -> Wednesday
    ("2026-12-04T15:00", 2, "2026-12-08T15:00:00+01:00"),  # Friday, across a weekend
    ("2026-12-05T10:00", 2, "2026-12-09T00:00:00+01:00"),  # Saturday: end of Tuesday
    ("2026-12-23T10:00", 2, "2026-12-28T10:00:00+01:00"),  # Christmas: Eve counts, 25th does not
    ("2026-12-24T11:00", 2, "2026-12-29T11:00:00+01:00"),
    ("2026-12-30T09:00", 2, "2027-01-04T09:00:00+01:00"),  # New Year's Day is a Friday
    ("2026-04-02T14:00", 2, "2026-04-08T14:00:00+02:00"),  # Easter: Good Friday to Easter Monday
    ("2026-03-27T10:00", 1, "2026-03-30T10:00:00+02:00"),  # across the DST change
    ("2026-11-30T10:00", 0, "2026-11-30T10:00:00+01:00"),
]


@pytest.mark.parametrize(("arrival", "n", "deadline"), WORKING_DAYS)
def test_add_working_days(cal: Calendar, arrival: str, n: int, deadline: str) -> None:
    assert cal.add_working_days(local(arrival), n).isoformat() == deadline


def test_add_working_days_refuses_negative(cal: Calendar) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        cal.add_working_days(local("2026-11-30T10:00"), -1)


def test_switchboard_overrides_do_not_change_working_days() -> None:
    # A closed switchboard day is still a working day for staff; an election
    # Sunday on which the switchboard opens is not.
    cal = Calendar(
        policy(
            closed_days=(ClosedDay(date(2026, 12, 1), "Personaldag"),),
            date_hours=(DateHours(date(2026, 12, 6), (TimeRange(time(9), time(12)),), "Val"),),
        )
    )
    assert cal.is_working_day(date(2026, 12, 1))
    assert not cal.is_working_day(date(2026, 12, 6))
    assert cal.add_working_days(local("2026-11-30T10:00"), 1) == local("2026-12-01T10:00")
    assert cal.add_working_days(local("2026-12-04T15:00"), 1) == local("2026-12-07T15:00")


def test_half_day_rule_only_shortens() -> None:
    short_friday = (TimeRange(time(8), time(10)),)
    saturday = (TimeRange(time(10), time(14)),)
    cal = Calendar(policy(weekly=(NINE_TO_FIVE,) * 4 + (short_friday, saturday, ())))
    # 2026-06-05 is a Friday before National Day: 08-10 stays 08-10.
    assert cal.schedule(date(2026, 6, 5)).ranges == short_friday
    # Påskafton 2026-04-04 is a Saturday eve: 10-14 becomes 10-12, not 08-12.
    assert cal.schedule(date(2026, 4, 4)).ranges == (TimeRange(time(10), time(12)),)


@pytest.mark.parametrize("day", [date(1952, 12, 25), date(2101, 1, 1)])
def test_years_without_holiday_data_are_refused(cal: Calendar, day: date) -> None:
    with pytest.raises(UnsupportedYearError, match="covers 1953–2100"):
        cal.schedule(day)


def test_instant_far_outside_the_data_is_refused(cal: Calendar) -> None:
    with pytest.raises(UnsupportedYearError):
        cal.status(datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    with pytest.raises(UnsupportedYearError):
        cal.status(datetime.fromisoformat("0001-01-01T00:00+05:00"))


def test_next_change_stops_where_the_data_ends(cal: Calendar) -> None:
    assert cal.next_change(local("2100-12-31T17:00")) is None


# ---- the property: next_change is later, flips, and nothing flips before it ------------

INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31, 23, 59)
).map(lambda naive: naive.replace(tzinfo=UTC))

STRESS = Calendar(
    policy(
        weekly=(NINE_TO_FIVE,) * 5
        + ((), (TimeRange(time(1), time(4)),)),  # Sunday night hours cross DST
        switches=(
            ManualSwitch(False, local("2027-03-01T09:30"), "Övning", local("2027-03-01T09:00")),
            ManualSwitch(True, local("2027-03-06T03:00"), "Storm", local("2027-03-05T20:00")),
        ),
    )
)


@settings(max_examples=300, deadline=None)
@given(at=INSTANTS, fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
@pytest.mark.parametrize("calendar", [Calendar(policy()), STRESS], ids=["policy", "stress"])
def test_next_change_is_later_flips_and_nothing_flips_before(
    calendar: Calendar, at: datetime, fraction: float
) -> None:
    status = calendar.status(at)
    change = status.next_change
    assert change is not None
    assert change > at
    assert calendar.is_open(change) is not status.is_open
    assert calendar.is_open(change - timedelta(microseconds=1)) is status.is_open
    # timedelta * float rounds to whole microseconds, so keep strictly before change.
    between = min(at + (change - at) * fraction, change - timedelta(microseconds=1))
    assert calendar.is_open(between) is status.is_open
    # Every day boundary and range edge in between agrees too.
    for sched in (
        calendar.schedule(at.astimezone(STHLM).date() + timedelta(days=k)) for k in range(8)
    ):
        for r in sched.ranges:
            for edge in (
                calendar.local_instant(sched.day, r.start),
                calendar.local_instant(sched.day, r.end),
            ):
                if at < edge < change:
                    assert calendar.is_open(edge) is status.is_open
