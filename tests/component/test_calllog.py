"""The call log on a real SQLite database (WAL), through its Alembic migrations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import STHLM
from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.routing import Action, Route, Step
from vvk_pbx.storage.calllog import CallLog, CallQuery, StorageError, async_url

T0 = datetime(2026, 11, 30, 9, 0, 0, 250000, tzinfo=STHLM)
ROUTE = Route(
    Action.OPERATOR_QUEUE, None, (Step("H1-H4", "Öppet"), Step("A3/A4", "queue")), external=True
)


@pytest.fixture
def store(call_log: CallLog) -> CallLog:
    return call_log


async def test_each_state_change_updates_the_one_row(store: CallLog) -> None:
    record = CallRecord.arrive("c1", "0701234567", "012319100", T0, ROUTE)
    await store.save_call(record)
    assert await store.get_call("c1") == record
    answered = record.answered(T0 + timedelta(seconds=7), "1001", 6000, 4)
    await store.save_call(answered)
    ended = answered.ended(T0 + timedelta(seconds=60))
    await store.save_call(ended)
    [only] = await store.list_calls()
    assert only == ended
    assert (only.rings, only.within_goal, only.outcome) == (2, True, Outcome.ANSWERED)
    assert only.trace == ("[H1-H4] Öppet", "[A3/A4] queue")
    assert only.arrived_at == T0 and only.arrived_at.tzinfo is not None


async def test_unanswered_call_that_ends_is_abandoned(store: CallLog) -> None:
    record = CallRecord.arrive("c2", "0701234567", "012319100", T0, ROUTE).ended(
        T0 + timedelta(seconds=9)
    )
    await store.save_call(record)
    saved = await store.get_call("c2")
    assert saved is not None and saved.outcome is Outcome.ABANDONED and saved.rings is None


async def test_legs_are_kept_per_call(store: CallLog) -> None:
    await store.save_call(CallRecord.arrive("c3", "x", "y", T0, ROUTE))
    leg = Leg("op-1", "c3", "PJSIP/1001", "operator", T0, ring_started_at=T0 + timedelta(seconds=1))
    await store.save_leg(leg)
    await store.save_leg(
        Leg(**{**leg.__dict__, "answered_at": T0 + timedelta(seconds=5), "status": "ANSWER"})
    )
    [saved] = await store.legs_of("c3")
    assert saved.status == "ANSWER" and saved.answered_at == T0 + timedelta(seconds=5)


async def test_open_calls_are_those_without_an_end(store: CallLog) -> None:
    await store.save_call(CallRecord.arrive("o1", "x", "y", T0 + timedelta(seconds=2), ROUTE))
    await store.save_call(CallRecord.arrive("o2", "x", "y", T0, ROUTE))
    await store.save_call(CallRecord.arrive("o3", "x", "y", T0, ROUTE).ended(T0))
    assert [c.id for c in await store.open_calls()] == ["o2", "o1"]


async def test_list_by_period(store: CallLog) -> None:
    for i in range(3):
        await store.save_call(CallRecord.arrive(f"p{i}", "x", "y", T0 + timedelta(days=i), ROUTE))
    found = await store.list_calls(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2))
    assert [c.id for c in found] == ["p1"]


async def test_rows_survive_a_reopen_and_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"
    first = await CallLog.open(url)
    await first.save_call(CallRecord.arrive("c4", "x", "y", T0, ROUTE))
    await first.close()
    second = await CallLog.open(url)  # migrations run again: a no-op
    try:
        assert (await second.get_call("c4")) is not None
    finally:
        await second.close()
    with sqlite3.connect(tmp_path / "calls.sqlite3") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0007"


def test_the_head_revision_without_alembic_is_alembics_own() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from vvk_pbx.storage.calllog import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


async def test_a_call_log_from_the_first_release_is_upgraded_in_place(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from vvk_pbx.storage.calllog import MIGRATIONS

    path = tmp_path / "calls.sqlite3"
    with create_engine(f"sqlite:///{path}").begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql(
            "INSERT INTO calls (id, direction, caller, called, arrived_at, outcome, trace) "
            "VALUES ('old', 'external', 'x', 'y', '2026-11-01 09:00:00', 'answered', '[]')"
        )
    store = await CallLog.open(f"sqlite+aiosqlite:///{path}")
    try:
        assert (await store.get_call("old")) is not None, "the old rows are kept"
        async with store.engine.connect() as connection:
            tables = await connection.run_sync(
                lambda sync: (
                    sync.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .scalars()
                    .all()
                )
            )
        assert {"referrals", "voicemail_messages", "staff_pins"} <= set(tables)
    finally:
        await store.close()


async def test_naive_datetimes_are_refused(store: CallLog) -> None:
    naive = CallRecord.arrive("c5", "x", "y", datetime(2026, 11, 30, 9, 0), ROUTE)
    with pytest.raises(StorageError, match="aware datetimes only"):
        await store.save_call(naive)


async def test_an_unusable_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StorageError, match="cannot open the call log"):
        await CallLog.open(f"sqlite+aiosqlite:///{tmp_path / 'dir.sqlite3'}")


async def test_timestamps_come_back_in_utc(store: CallLog) -> None:
    await store.save_call(CallRecord.arrive("c6", "x", "y", T0, ROUTE))
    saved = await store.get_call("c6")
    assert saved is not None and saved.arrived_at.tzinfo == UTC and saved.arrived_at == T0


async def test_a_batch_writes_new_and_changed_calls_with_their_legs_at_once(
    store: CallLog,
) -> None:
    first = CallRecord.arrive("b1", "x", "y", T0, ROUTE)
    await store.save_call(first)
    changed = first.answered(T0 + timedelta(seconds=3), "1001", 6000, 4)
    new = CallRecord.arrive("b2", "x", "y", T0 + timedelta(seconds=1), ROUTE)
    legs = [
        Leg("b1:op1", "b1", "PJSIP/1001", "op", T0, answered_at=T0 + timedelta(seconds=3)),
        Leg("b2:op1", "b2", "PJSIP/1002", "op", T0 + timedelta(seconds=1)),
    ]
    await store.save_batch([changed, new], legs)
    assert await store.list_calls() == [changed, new]
    by_call = await store.legs_by_call(["b1", "b2", "none"])
    assert {k: [leg.id for leg in v] for k, v in by_call.items()} == {
        "b1": ["b1:op1"],
        "b2": ["b2:op1"],
    }


async def test_a_failed_batch_writes_nothing(store: CallLog) -> None:
    fine = CallRecord.arrive("b3", "x", "y", T0, ROUTE)
    broken = Leg("b3:op1", "b3", None, "op", T0)  # type: ignore[arg-type]  # endpoint is NOT NULL
    with pytest.raises(StorageError, match="call log write failed for b3, b3:op1"):
        await store.save_batch([fine], [broken])
    assert await store.get_call("b3") is None, "the call row rolled back with the leg"


async def test_a_locked_sqlite_database_fails_the_write_at_once_and_loses_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "calls.sqlite3"
    store = await CallLog.open(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        record = CallRecord.arrive("l1", "x", "y", T0, ROUTE)
        with pytest.raises(StorageError, match="database is locked"):
            await store.save_call(record)  # at once: the event loop never waits for a lock
        other.execute("ROLLBACK")
        await store.save_call(record)  # the recorder's retry
        assert await store.get_call("l1") == record
    finally:
        other.close()
        await store.close()


async def test_a_database_where_no_directory_can_be_made_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="cannot open the call log"):
        await CallLog.open("sqlite+aiosqlite:////proc/vvk-nope/calls.sqlite3")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("/var/lib/vvk-pbx/calls.sqlite3", "sqlite+aiosqlite:////var/lib/vvk-pbx/calls.sqlite3"),
        ("sqlite:///calls.sqlite3", "sqlite+aiosqlite:///calls.sqlite3"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgres://vvk@db/vvk", "postgresql+asyncpg://vvk@db/vvk"),
        ("postgresql://vvk:pw@db/vvk", "postgresql+asyncpg://vvk:pw@db/vvk"),
        ("postgresql+asyncpg://db/vvk", "postgresql+asyncpg://db/vvk"),
        ("mysql://db/vvk", "mysql://db/vvk"),
    ],
)
def test_ops_may_give_a_path_or_a_url_without_a_driver(given: str, used: str) -> None:
    assert async_url(given) == used


async def test_one_row_the_database_refuses_never_blocks_the_others(
    store: CallLog, caplog: pytest.LogCaptureFixture
) -> None:
    # A leg of a call the log does not have breaks a constraint on both databases;
    # the rest of its batch is written, and the refused row is set aside, in the log.
    from vvk_pbx.services.recorder import Recorder

    recorder = Recorder(store, retry_s=0.01)
    recorder.save(CallRecord.arrive("ok1", "0701", "012319100", T0, ROUTE))
    recorder.save_leg(Leg("stray-1", "no-such-call", "PJSIP/1001", "op", T0))
    recorder.save(CallRecord.arrive("ok2", "0702", "012319100", T0, ROUTE))
    await asyncio.wait_for(recorder.flush(), 5)
    assert {r.id for r in await store.list_calls()} == {"ok1", "ok2"}
    assert recorder.set_aside == 1
    assert "call log refused stray-1, set aside" in caplog.text
    # The writer goes on: the next change is written as usual.
    recorder.save(CallRecord.arrive("ok3", "0703", "012319100", T0, ROUTE))
    await asyncio.wait_for(recorder.flush(), 5)
    assert {r.id for r in await store.list_calls()} == {"ok1", "ok2", "ok3"}


async def test_a_caller_id_of_any_length_and_characters_is_logged(store: CallLog) -> None:
    # PostgreSQL refused a caller over 64 characters (and any NUL byte): the
    # controller bounds them where they enter, and the call is logged.
    from tests.unit.flowtable import ctx
    from vvk_pbx.domain.callflow.decide import arrive
    from vvk_pbx.domain.callflow.events import Arrived
    from vvk_pbx.domain.routing import CallKind

    odd = "+46" + "7" * 300 + "\x00<script>"
    name = "Åsa Öberg, Växeln " + "=" * 200 + "\x00"
    step = arrive("c9", Arrived(CallKind.INBOUND, odd, "012319100", T0, name), ctx(T0))
    await store.save_call(step.call.record)
    saved = await store.get_call("c9")
    assert saved is not None and len(saved.caller) == 64 and saved.caller.startswith("+467777")
    assert len(saved.caller_name) == 64 and saved.caller_name.startswith("Åsa Öberg, Växeln ==")
    assert "[O1] caller id, name or number cut to 64 printable characters" in saved.trace


async def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # It holds callers' numbers and the PIN table (S1), like the ARI password.
    file = tmp_path / "calls.sqlite3"
    log = await CallLog.open(str(file))
    await log.save_call(CallRecord.arrive("c1", "0701", "012319100", T0, ROUTE))
    await log.close()
    assert file.stat().st_mode & 0o777 == 0o600
    file.chmod(0o644)  # an older installation's file is mended at the next open
    log = await CallLog.open(str(file))
    await log.close()
    assert file.stat().st_mode & 0o777 == 0o600


async def test_an_export_stopped_halfway_lets_go_of_its_thread_and_its_read(
    store: CallLog,
) -> None:
    records = [
        CallRecord.arrive(f"s{n}", "x", "y", T0 + timedelta(seconds=n), ROUTE) for n in range(9)
    ]
    await store.save_batch(records, [])
    rows = store.stream_rows(CallQuery(), ("id",), batch=2)
    assert await anext(rows) == [("s0",), ("s1",)]
    await rows.aclose()  # a download the client gave up on
    for _ in range(100):
        if not any(t.name.startswith("vvk-pbx-export") for t in threading.enumerate()):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the export's worker thread is still there")
    await store.save_call(replace(records[0], outcome=Outcome.ANSWERED))
    if store.engine.dialect.name == "sqlite":
        # A checkpoint that truncates the WAL waits for every reader of an older snapshot:
        # the stopped export's statement is gone, so none is left.
        with contextlib.closing(sqlite3.connect(str(store.engine.url.database))) as other:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    again = [row async for page in store.stream_rows(CallQuery(), ("id",)) for row in page]
    assert again == [(r.id,) for r in records]


async def test_an_export_of_a_broken_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = await CallLog.open(f"sqlite+aiosqlite:///{path}")
    try:
        with sqlite3.connect(path) as other:
            other.execute("ALTER TABLE calls RENAME TO gone")
        with pytest.raises(StorageError, match="exporting calls failed"):
            async for _page in store.stream_rows(CallQuery(), ("id",)):
                pass
    finally:
        await store.close()
