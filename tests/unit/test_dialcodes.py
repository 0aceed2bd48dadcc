"""Staff dial codes (R2, R4): parsing, refusals, and when the return time falls."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import STHLM
from vvk_pbx.config import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.dialcodes import (
    ClearReferral,
    CodeError,
    ListenVoicemail,
    Problem,
    SetReferral,
    parse,
    return_time,
)


@pytest.mark.parametrize(
    ("dialed", "meaning"),
    [
        ("*23*2*1430#", SetReferral(2, 14, 30)),
        ("*23*2*1430%23", SetReferral(2, 14, 30)),  # as it arrives in a SIP URI
        ("*23*04*0800#", SetReferral(4, 8, 0)),
        ("*23*4*0107*0800#", SetReferral(4, 8, 0, (1, 7))),
        ("*23*4*0229*0800#", SetReferral(4, 8, 0, (2, 29))),
        ("#23#", ClearReferral()),
        ("*98#", ListenVoicemail()),
        ("*24*1102*4711*2*1430#", SetReferral(2, 14, 30, None, "1102", "4711")),
        ("*24*1102*4711*5*1207*0900#", SetReferral(5, 9, 0, (12, 7), "1102", "4711")),
        ("#24*1102*4711#", ClearReferral("1102", "4711")),
        # phones that use # as the send key and do not pass it on
        ("*23*2*1430", SetReferral(2, 14, 30)),
        ("#23", ClearReferral()),
        ("*98", ListenVoicemail()),
    ],
)
def test_the_code_family(dialed: str, meaning: object) -> None:
    assert parse(dialed) == meaning


@pytest.mark.parametrize(
    ("dialed", "problem"),
    [
        ("*23*2#", Problem.MALFORMED),
        ("*23*2*143#", Problem.MALFORMED),  # four digits are always a time
        ("*23*2*14300#", Problem.MALFORMED),
        ("*23*123*1430#", Problem.MALFORMED),  # reasons are 0-99
        ("*23**1430#", Problem.MALFORMED),
        ("*23*2*1430*1200*1#", Problem.MALFORMED),
        ("*99*2*1430#", Problem.MALFORMED),
        ("#23*1102#", Problem.MALFORMED),
        ("#24*1102#", Problem.MALFORMED),
        ("*23*2*2561#", Problem.IMPOSSIBLE_TIME),
        ("*23*2*1460#", Problem.IMPOSSIBLE_TIME),
        ("*23*99*2561#", Problem.IMPOSSIBLE_TIME),  # the example: the time is wrong too
        ("*23*2*1332*0800#", Problem.IMPOSSIBLE_DATE),
        ("*23*2*0230*0800#", Problem.IMPOSSIBLE_DATE),
        ("*23*2*0000*0800#", Problem.IMPOSSIBLE_DATE),
    ],
)
def test_bad_codes_are_refused_with_the_reason(dialed: str, problem: Problem) -> None:
    with pytest.raises(CodeError) as info:
        parse(dialed)
    assert info.value.problem is problem


@pytest.fixture
def calendar(sample_settings: Settings) -> Calendar:
    return Calendar(sample_settings.hours_policy())


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=STHLM)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "dialed", "back"),
    [
        # HHMM still ahead today
        (at(2026, 11, 30, 9, 0), "*23*2*1430#", at(2026, 11, 30, 14, 30)),
        # passed today: the next working day (Friday -> Monday)
        (at(2026, 12, 4, 15, 0), "*23*2*1430#", at(2026, 12, 7, 14, 30)),
        # Christmas Eve is a (half) working day; from it, the 25th-27th are not
        (at(2026, 12, 23, 16, 0), "*23*1*0800#", at(2026, 12, 24, 8, 0)),
        (at(2026, 12, 24, 11, 0), "*23*1*0800#", at(2026, 12, 28, 8, 0)),
        # exactly now is not ahead
        (at(2026, 11, 30, 14, 30), "*23*2*1430#", at(2026, 12, 1, 14, 30)),
        # a January date set in December is next year
        (at(2026, 12, 15, 10, 0), "*23*4*0107*0800#", at(2027, 1, 7, 8, 0)),
        # a date later this year
        (at(2026, 3, 1, 10, 0), "*23*4*0601*0800#", at(2026, 6, 1, 8, 0)),
        # 29 February: the next leap year's
        (at(2026, 3, 1, 10, 0), "*23*4*0229*0800#", at(2028, 2, 29, 8, 0)),
        # across the spring DST change the wall time is kept
        (at(2026, 3, 27, 16, 0), "*23*2*0900#", at(2026, 3, 30, 9, 0)),
    ],
)
def test_the_return_time(calendar: Calendar, now: datetime, dialed: str, back: datetime) -> None:
    code = parse(dialed)
    assert isinstance(code, SetReferral)
    got = return_time(code, now, calendar)
    assert got == back and got.utcoffset() == back.utcoffset()
