"""The operator queue's order (A4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import STHLM
from vvk_pbx.domain.queue import Waiting, in_order

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
