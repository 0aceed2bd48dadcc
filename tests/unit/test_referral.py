"""Referrals (R1–R5): which is in force, what the caller hears, and callback deadlines (V2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import STHLM
from vvk_pbx.config import Settings
from vvk_pbx.config.model import Weekly
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.referral import Referral, Source, announced_return, announcement, in_force


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=STHLM)  # type: ignore[misc]


@pytest.fixture
def calendar(sample_settings: Settings) -> Calendar:
    return Calendar(sample_settings.hours_policy())


def ref(rid: str, start: datetime, end: datetime, reason: int = 2, ext: str = "1101") -> Referral:
    return Referral(rid, ext, reason, start, end, ext, Source.PHONE)


def test_one_referral_in_force_future_ones_wait_and_each_ends_by_itself() -> None:
    now = at(2026, 11, 30, 10, 0)
    meeting = ref("a", now - timedelta(hours=1), at(2026, 11, 30, 14, 30))
    holiday = ref("b", at(2026, 12, 21, 0, 0), at(2027, 1, 4, 8, 0), reason=4)
    other = ref("c", now - timedelta(hours=1), now + timedelta(hours=1), ext="1102")
    referrals = [meeting, holiday, other]
    assert in_force(referrals, "1101", now) == meeting
    assert in_force(referrals, "1101", at(2026, 11, 30, 14, 30)) is None  # ended by itself
    assert in_force(referrals, "1101", at(2026, 12, 22, 9, 0)) == holiday  # its turn came
    assert in_force([meeting.cleared(now), holiday], "1101", now) is None  # R4


def test_the_latest_started_referral_wins() -> None:
    now = at(2026, 11, 30, 10, 0)
    course = ref("a", at(2026, 11, 30, 8, 0), at(2026, 11, 30, 16, 0), reason=5)
    lunch = ref("b", at(2026, 11, 30, 9, 55), at(2026, 11, 30, 11, 0), reason=1)
    assert in_force([course, lunch], "1101", now) == lunch
    assert in_force([course, lunch], "1101", at(2026, 11, 30, 11, 0)) == course


@pytest.mark.parametrize(
    ("now", "end", "heard"),
    [
        (
            at(2026, 11, 30, 10, 0),
            at(2026, 11, 30, 14, 30),
            ["today", "at-clock", "num-14", "num-30"],
        ),
        (at(2026, 11, 30, 15, 0), at(2026, 12, 1, 8, 0), ["tomorrow", "at-clock", "num-8"]),
        (at(2026, 11, 30, 10, 0), at(2026, 12, 3, 9, 0), ["day-3", "at-clock", "num-9"]),
        (
            at(2026, 11, 27, 10, 0),
            at(2026, 12, 7, 9, 0),
            ["day-0", "the-date", "ord-7", "month-12", "at-clock", "num-9"],
        ),
        # back on a Saturday: the caller hears the next opening, Monday 08:00
        (at(2026, 12, 2, 10, 0), at(2026, 12, 5, 10, 0), ["day-0", "at-clock", "num-8"]),
        # back during lunch: the switchboard opens again at 13
        (
            at(2026, 11, 30, 10, 0),
            at(2026, 11, 30, 12, 15),
            ["today", "at-clock", "num-13"],
        ),
    ],
)
def test_what_the_caller_hears(
    calendar: Calendar, now: datetime, end: datetime, heard: list[str]
) -> None:
    referral = ref("a", now - timedelta(minutes=5), end)
    assert announcement("1101", referral, now, calendar) == [
        "name-1101",
        "reason-2",
        "and-back",
        *heard,
    ]


@pytest.fixture
def bygg(sample_settings: Settings) -> Calendar:
    """Bygg och miljö's phone hours in the sample config: Mon–Thu 9–11 and 13–15, Fri 9–11."""
    policy = sample_settings.unit_hours_policy("bygg-miljo")
    assert policy is not None
    return Calendar(policy)


@pytest.mark.parametrize(
    ("back", "heard"),
    [
        # inside both: unchanged
        (at(2026, 11, 30, 10, 0), at(2026, 11, 30, 10, 0)),
        # the switchboard is open at 08:30 but the unit's phone hours start at 9
        (at(2026, 11, 30, 8, 30), at(2026, 11, 30, 9, 0)),
        # 11:30: the unit closes at 11 and the switchboard at 12 for lunch; both open at 13
        (at(2026, 11, 30, 11, 30), at(2026, 11, 30, 13, 0)),
        # Friday afternoon: the unit has no afternoon, so Monday 09:00
        (at(2026, 12, 4, 14, 0), at(2026, 12, 7, 9, 0)),
        # Christmas Eve is a half day: the switchboard 8–12, so the unit 9–11; after
        # it come Christmas Day, Boxing Day and a Sunday, so Monday the 28th at 9
        (at(2026, 12, 24, 11, 30), at(2026, 12, 28, 9, 0)),
        # after the switchboard closes the unit's 13–15 does not count on its own
        (at(2026, 12, 23, 15, 30), at(2026, 12, 24, 9, 0)),
    ],
)
def test_the_return_is_moved_to_when_the_unit_and_the_switchboard_are_both_open(
    calendar: Calendar, bygg: Calendar, back: datetime, heard: datetime
) -> None:
    assert announced_return(back, calendar, bygg) == heard


def test_a_unit_without_phone_hours_follows_the_switchboard(
    sample_settings: Settings, calendar: Calendar
) -> None:
    assert sample_settings.unit_hours_policy("ifo") is None
    assert sample_settings.unit_hours_policy("no-such-unit") is None
    assert announced_return(at(2026, 11, 30, 8, 30), calendar, None) == at(2026, 11, 30, 8, 30)


def test_hours_that_never_meet_give_the_return_as_set(sample_settings: Settings) -> None:
    weekend = Weekly.model_validate({"saturday": ["09:00-11:00"]})
    units = sample_settings.units
    settings = sample_settings.model_copy(
        update={"units": (units[0].model_copy(update={"phone_hours": weekend}), *units[1:])}
    )
    policy = settings.unit_hours_policy(settings.units[0].id)
    assert policy is not None
    back = at(2026, 11, 30, 17, 0)
    assert announced_return(back, Calendar(settings.hours_policy()), Calendar(policy)) == back


def test_a_return_beyond_the_holiday_data_is_told_as_set(
    calendar: Calendar, bygg: Calendar
) -> None:
    back = at(2101, 1, 1, 3, 0)
    assert announced_return(back, calendar, bygg) == back


def test_without_a_referral_the_caller_hears_the_name_only(calendar: Calendar) -> None:
    assert announcement("1101", None, at(2026, 11, 30, 10, 0), calendar) == [
        "name-1101",
        "not-answering",
    ]


@pytest.mark.parametrize(
    ("left", "deadline"),
    [
        # a weekend: Friday 15:00 + 2 working days is Tuesday 15:00
        (at(2026, 11, 27, 15, 0), at(2026, 12, 1, 15, 0)),
        # Christmas: the 24th is a working (half) day, the 25th-27th are not
        (at(2026, 12, 23, 10, 0), at(2026, 12, 28, 10, 0)),
        (at(2026, 12, 24, 10, 0), at(2026, 12, 29, 10, 0)),
        # Easter 2026: Good Friday 3 April to Easter Monday 6 April are red
        (at(2026, 4, 2, 9, 0), at(2026, 4, 8, 9, 0)),
        # left on Easter Sunday: counting starts Tuesday, ends with Wednesday
        (at(2026, 4, 5, 12, 0), at(2026, 4, 9, 0, 0)),
    ],
)
def test_callback_deadlines_are_two_working_days(
    calendar: Calendar, left: datetime, deadline: datetime
) -> None:
    assert calendar.add_working_days(left, 2) == deadline
