"""The routing decision and its trace (O1), and the ring maths of A1."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import STHLM
from vvk_pbx.config import Settings
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.routing import (
    Action,
    CallKind,
    digits,
    ring_timeout_s,
    rings,
    route,
    spoken_digits,
    within_goal,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=STHLM)


@pytest.mark.parametrize(
    ("seconds", "ring", "in_goal"),
    [
        (0, 1, True),
        (5.999, 1, True),
        (6, 2, True),
        (7, 2, True),
        (23.9, 4, True),
        (24, 5, False),
        (26, 5, False),
    ],
)
def test_rings_and_goal_with_the_swedish_cadence(seconds: float, ring: int, in_goal: bool) -> None:
    assert rings(seconds, 6000) == ring
    assert within_goal(seconds, 6000, 4) is in_goal


def test_negative_ring_time_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        rings(-1, 6000)


@pytest.mark.parametrize(
    ("number", "clean"),
    [("0123-191 00", "012319100"), ("+46701234567", "0701234567"), ("*23*2*1430#", "2321430")],
)
def test_digits(number: str, clean: str) -> None:
    assert digits(number) == clean


ROUTES = [
    # kind, caller, dialed, local time, action, target, last rule
    (
        CallKind.INBOUND,
        "+46701234567",
        "0123-191 00",
        "2026-12-24T11:30",
        Action.OPERATOR_QUEUE,
        None,
        "A3/A4",
    ),
    (
        CallKind.INBOUND,
        "+46701234567",
        "012319100",
        "2026-12-24T12:30",
        Action.ANSWERING_MACHINE,
        None,
        "H5",
    ),
    (
        CallKind.INBOUND,
        "0701234567",
        "0123191101",
        "2026-12-24T12:30",
        Action.EXTENSION,
        "1101",
        "A5",
    ),
    (
        CallKind.INBOUND,
        "0701234567",
        "0123199999",
        "2026-11-30T10:00",
        Action.OPERATOR_QUEUE,
        None,
        "A3/A4",
    ),
    (CallKind.INTERNAL, "1101", "1202", "2026-12-25T03:00", Action.EXTENSION, "1202", "D1"),
    (CallKind.INTERNAL, "1101", "9", "2026-11-30T10:00", Action.OPERATOR_QUEUE, None, "A3/A4"),
    (CallKind.INTERNAL, "1101", "0", "2026-11-30T12:30", Action.ANSWERING_MACHINE, None, "H5"),
    (CallKind.INTERNAL, "1101", "4711", "2026-11-30T10:00", Action.UNKNOWN_NUMBER, None, "D1"),
    (
        CallKind.FEATURE,
        "1101",
        "*23*2*1430#",
        "2026-11-30T10:00",
        Action.FEATURE_CODE,
        "1101",
        "R2",
    ),
]


@pytest.mark.parametrize(("kind", "caller", "dialed", "when", "action", "target", "rule"), ROUTES)
def test_route_table(
    sample_settings: Settings,
    sample_calendar: Calendar,
    kind: CallKind,
    caller: str,
    dialed: str,
    when: str,
    action: Action,
    target: str | None,
    rule: str,
) -> None:
    decision = route(kind, caller, dialed, at(when), sample_calendar, sample_settings.numbering())
    assert (decision.action, decision.target) == (action, target)
    assert decision.trace[-1].rule == rule
    assert decision.external is (kind is CallKind.INBOUND)


def test_closed_trace_says_why_and_when_it_opens(
    sample_settings: Settings, sample_calendar: Calendar
) -> None:
    decision = route(
        CallKind.INBOUND,
        "0701234567",
        "012319100",
        at("2026-12-24T12:30"),
        sample_calendar,
        sample_settings.numbering(),
    )
    assert [str(s) for s in decision.trace] == [
        "[dialplan] external call from 0701234567 to 012319100",
        "[H1-H4] Stängt – Julafton: 08:00–12:00",
        "[H5] central answering machine; opens again 2026-12-28T08:00:00+01:00",
    ]


def test_a_switchboard_number_written_with_plus46_matches_the_dialed_national_number(
    sample_settings: Settings, sample_calendar: Calendar
) -> None:
    switchboard = sample_settings.switchboard.model_copy(update={"number": "+46 123 191 00"})
    settings = sample_settings.model_copy(update={"switchboard": switchboard})
    decision = route(
        CallKind.INBOUND,
        "0701234567",
        "012319100",
        at("2026-11-30T10:00"),
        sample_calendar,
        settings.numbering(),
    )
    assert decision.action is Action.OPERATOR_QUEUE
    assert all("no direct number" not in step.decision for step in decision.trace)


def test_ring_timeout_and_spoken_digits() -> None:
    assert ring_timeout_s(6000, 4) == 72
    assert ring_timeout_s(1000, 4) == 60  # never under a minute
    assert spoken_digits("0123-191 90") == "0 1 2 3 1 9 1 9 0"
