"""The operator queue's order (A4)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import STHLM
from vvk_pbx.domain.queue import OperatorLine, Waiting, in_order, offers

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)


def w(call_id: str, external: bool, seconds: float) -> Waiting:
    return Waiting(call_id, external, T0 + timedelta(seconds=seconds))


def test_external_goes_before_an_internal_that_waited_briefly() -> None:
    assert [c.call_id for c in in_order([w("int", False, 0), w("ext", True, 30)], 60)] == [
        "ext",
        "int",
    ]


def test_internal_that_waited_long_goes_before_a_new_external() -> None:
    assert [c.call_id for c in in_order([w("int", False, 0), w("ext", True, 90)], 60)] == [
        "int",
        "ext",
    ]


def test_same_kind_is_first_come_first_served() -> None:
    calls = [w("b", True, 5), w("a", True, 1), w("y", False, 7), w("x", False, 3)]
    assert [c.call_id for c in in_order(calls, 60)] == ["a", "b", "x", "y"]


@given(
    internal_ms=st.integers(min_value=0, max_value=3_600_000),
    externals_ms=st.lists(st.integers(min_value=0, max_value=3_600_000), max_size=20),
    delay_ms=st.integers(min_value=0, max_value=600_000),
)
def test_an_internal_call_is_never_passed_by_an_external_that_arrived_after_its_delay(
    internal_ms: int, externals_ms: list[int], delay_ms: int
) -> None:
    internal_at, delay = internal_ms / 1000, delay_ms / 1000
    externals = [t / 1000 for t in externals_ms]
    # The internal call can only be passed by external calls that arrived
    # before it plus the delay: it never waits forever.
    calls = [w("int", False, internal_at)] + [w(f"e{i}", True, t) for i, t in enumerate(externals)]
    order = [c.call_id for c in in_order(calls, delay)]
    ahead = order[: order.index("int")]
    assert all(externals[int(c[1:])] <= internal_at + delay for c in ahead)


def line(ext: str, free: bool = True, idle_s: float = 0) -> OperatorLine:
    return OperatorLine(ext, free, T0 + timedelta(seconds=idle_s))


def test_ring_all_offers_the_first_caller_every_free_operator() -> None:
    waiting = [w("a", True, 0), w("b", True, 1)]
    ops = [line("1001"), line("1002", free=False), line("1003")]
    assert offers("ring-all", waiting, ops) == [("a", ("1001", "1003"))]


def test_longest_idle_pairs_callers_with_the_longest_idle_operators() -> None:
    waiting = [w("a", True, 0), w("b", True, 1), w("c", True, 2)]
    ops = [line("1001", idle_s=30), line("1002", idle_s=10), line("1003", free=False)]
    assert offers("longest-idle", waiting, ops) == [("a", ("1002",)), ("b", ("1001",))]


def test_longest_idle_ties_follow_config_order() -> None:
    ops = [line("1002", idle_s=5), line("1001", idle_s=5)]
    assert offers("longest-idle", [w("a", True, 0)], ops) == [("a", ("1002",))]


def test_nothing_is_offered_without_a_caller_or_a_free_operator() -> None:
    assert offers("ring-all", [], [line("1001")]) == []
    assert offers("longest-idle", [w("a", True, 0)], [line("1001", free=False)]) == []


def test_an_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown ring strategy"):
        offers("random", [w("a", True, 0)], [line("1001")])


def test_a_call_that_prefers_an_operator_goes_to_them_when_they_are_on_no_call() -> None:
    recall = Waiting("r", True, T0 + timedelta(seconds=5), prefer="1002")
    waiting = [w("a", True, 0), recall]
    # 1002 is paused (not free for the queue) but reachable: the recall rings only them,
    # and the first in line gets whoever else is free.
    ops = [line("1001"), OperatorLine("1002", False, T0, reachable=True)]
    assert offers("ring-all", waiting, ops) == [("r", ("1002",)), ("a", ("1001",))]
    # Busy or logged out: the preferred call waits as any other, in its place.
    ops = [line("1001"), OperatorLine("1002", False, T0, reachable=False)]
    assert offers("ring-all", waiting, ops) == [("a", ("1001",))]
    assert offers("longest-idle", [recall], ops) == [("r", ("1001",))]
