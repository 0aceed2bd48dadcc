"""Staff PINs (R2, V1): kept hashed, and locked after too many wrong ones."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import STHLM
from vvk_pbx.domain.pins import LOCK_S, MAX_FAILURES, PinRecord, new_pin, valid_pin

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)


def test_a_pin_is_kept_only_as_a_salted_hash() -> None:
    a, b = PinRecord.create("1101", "4711"), PinRecord.create("1102", "4711")
    assert "4711" not in a.pin_hash and a.pin_hash != b.pin_hash
    assert a.matches("4711") and not a.matches("4712") and not a.matches("47a1")


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", ""])
def test_a_pin_is_4_to_8_digits(pin: str) -> None:
    assert not valid_pin(pin)
    with pytest.raises(ValueError, match="4 to 8 digits"):
        PinRecord.create("1101", pin)


def test_new_pins_are_six_digits() -> None:
    assert all(valid_pin(p) and len(p) == 6 for p in (new_pin() for _ in range(20)))


def test_wrong_pins_lock_and_a_right_one_resets() -> None:
    record = PinRecord.create("1101", "4711")
    for _ in range(MAX_FAILURES - 1):
        record = record.after_attempt(False, T0)
    assert record.failures == MAX_FAILURES - 1 and not record.locked(T0)
    assert record.after_attempt(True, T0).failures == 0
    locked = record.after_attempt(False, T0)
    assert locked.locked(T0 + timedelta(seconds=LOCK_S - 1))
    assert not locked.locked(T0 + timedelta(seconds=LOCK_S))
