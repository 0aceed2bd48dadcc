"""The answering machine's message, composed from prompts (H5)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import STHLM
from vvk_pbx.domain.announcements import answering_machine, clock, next_opening


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STHLM)


@pytest.mark.parametrize(
    ("now", "opens", "words"),
    [
        ("2026-12-24T12:30", "2026-12-28T08:00", ["opens-again", "day-0", "at-clock", "num-8"]),
        ("2026-11-30T12:10", "2026-11-30T13:00", ["opens-again", "today", "at-clock", "num-13"]),
        ("2026-11-30T17:00", "2026-12-01T08:00", ["opens-again", "tomorrow", "at-clock", "num-8"]),
        (
            "2027-07-04T10:00",
            "2027-07-05T09:30",
            ["opens-again", "tomorrow", "at-clock", "num-9", "num-30"],
        ),
    ],
)
def test_next_opening(now: str, opens: str, words: list[str]) -> None:
    assert next_opening(at(now), at(opens)) == words


def test_the_message_reads_everything_in_order() -> None:
    media = answering_machine(at("2026-12-25T10:00"), at("2026-12-28T08:00"), ["1", "2", "3"])
    assert media == [
        "sound:vvk/welcome",
        "sound:vvk/closed",
        "sound:vvk/hours",
        "sound:vvk/opens-again",
        "sound:vvk/day-0",
        "sound:vvk/at-clock",
        "sound:vvk/num-8",
        "sound:vvk/on-call-1",
        "sound:vvk/on-call-2",
        "sound:vvk/on-call-3",
    ]


@pytest.mark.parametrize(
    ("hour", "minute", "heard"),
    [
        (8, 0, ["at-clock", "num-8"]),
        (14, 30, ["at-clock", "num-14", "num-30"]),
        (14, 5, ["at-clock", "num-14", "num-0", "num-5"]),  # "fjorton noll fem"
        (9, 10, ["at-clock", "num-9", "num-10"]),
    ],
)
def test_the_clock_is_read_as_swedes_read_it(hour: int, minute: int, heard: list[str]) -> None:
    assert clock(hour, minute) == heard
