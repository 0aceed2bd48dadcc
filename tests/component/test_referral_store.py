"""Referrals in a real SQLite and PostgreSQL database (R1–R4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import STHLM
from vvk_pbx.domain.referral import Source
from vvk_pbx.storage.calllog import CallLog
from vvk_pbx.storage.referrals import ReferralStore

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReferralStore]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    log = await CallLog.open(url)
    try:
        yield ReferralStore(log.engine)
    finally:
        if request.param == "postgresql":
            async with log.engine.begin() as connection:
                await connection.exec_driver_sql("TRUNCATE referrals")
        await log.close()


async def test_a_new_referral_replaces_the_one_in_force_and_history_is_kept(
    store: ReferralStore,
) -> None:
    lunch = await store.set("1101", 1, T0, T0 + timedelta(hours=1), "1101", Source.PHONE)
    assert await store.in_force("1101", T0 + timedelta(minutes=5)) == lunch
    later = T0 + timedelta(minutes=10)
    meeting = await store.set(
        "1101", 2, later, T0 + timedelta(hours=4), "1101", Source.PHONE, note="Budget"
    )
    assert await store.in_force("1101", later) == meeting
    history = await store.history("1101")
    assert [r.reason for r in history] == [1, 2]
    assert history[0].cleared_at == later, "the lunch referral ended when the meeting began"
    assert history[1].note == "Budget"


async def test_a_future_referral_waits_and_each_ends_by_itself(store: ReferralStore) -> None:
    holiday_start = T0 + timedelta(days=21)
    await store.set("1101", 2, T0, T0 + timedelta(hours=2), "1101", Source.PHONE)
    holiday = await store.set(
        "1101", 4, holiday_start, holiday_start + timedelta(days=14), "op", Source.API
    )
    assert (await store.in_force("1101", T0 + timedelta(hours=1))).reason == 2  # type: ignore[union-attr]
    assert await store.in_force("1101", T0 + timedelta(hours=3)) is None
    assert await store.in_force("1101", holiday_start + timedelta(days=1)) == holiday
    assert await store.all_in_force(holiday_start + timedelta(days=1)) == {"1101": holiday}


async def test_clearing_opens_the_phone(store: ReferralStore) -> None:
    await store.set("1101", 2, T0, T0 + timedelta(hours=2), "1101", Source.PHONE)
    back = T0 + timedelta(minutes=30)
    cleared = await store.clear("1101", back)
    assert cleared is not None and cleared.cleared_at == back
    assert await store.in_force("1101", back) is None
    assert await store.clear("1101", back) is None  # nothing to clear


async def test_a_return_before_the_start_is_refused(store: ReferralStore) -> None:
    with pytest.raises(ValueError, match="is not after"):
        await store.set("1101", 2, T0, T0, "1101", Source.CLI)
    assert await store.history("1101") == []
