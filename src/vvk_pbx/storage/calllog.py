"""The call log store: one row per call and per leg, written at every state change (A1, F1).

SQLite in WAL mode is the embedded default; a ``postgresql+asyncpg://`` URL
selects PostgreSQL (the multi-node store). The schema is made and upgraded by
the Alembic migrations in ``migrations/`` when the store opens.

Errors::

    StorageError(RuntimeError)   the database could not be opened, migrated or
    │                            written (the message names the URL and why)
    └── RecordRefusedError            the database answered, and refused the data of
                                 a write (too long, a constraint): trying the
                                 same rows again cannot help
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    CursorResult,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.localtime import utc_instant
from vvk_pbx.storage.tables import UtcDateTime, calls, legs

MIGRATIONS = Path(__file__).parent / "migrations"
ENV_VAR = "VVK_PBX_DATABASE_URL"
# How ``CallLog.stream_rows`` gives times: UTC, ``2026-03-29 00:59:59.250000``. It is
# how SQLAlchemy keeps a datetime in SQLite, so SQLite's rows need no conversion.
UTC_TEXT = "%Y-%m-%d %H:%M:%S.%f"


class StorageError(RuntimeError):
    """The call log could not be opened, migrated or written."""


class RecordRefusedError(StorageError):
    """The database refused the data of a write (SQLSTATE class 22 or 23, or SQLite's
    integrity error): the same rows will be refused again."""


def _refused(exc: SQLAlchemyError) -> bool:
    if isinstance(exc, IntegrityError | DataError):
        return True
    code = str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")
    return code[:2] in ("22", "23")  # data exception, integrity constraint violation


def default_url(state_dir: Path) -> str:
    """``$VVK_PBX_DATABASE_URL``, else a SQLite file in the state directory."""
    return os.environ.get(ENV_VAR) or f"sqlite+aiosqlite:///{state_dir / 'calls.sqlite3'}"


# The async drivers the call log runs on, for URLs given without one.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for what ops type: a file path is a SQLite file
    (``/var/lib/vvk-pbx/calls.sqlite3``), and a URL without a driver gets ours
    (``sqlite:///...`` → ``sqlite+aiosqlite:///...``, ``postgresql://`` or
    ``postgres://`` → ``postgresql+asyncpg://``). Anything else is returned as
    given, for ``CallLog.open`` to accept or refuse."""
    if "://" not in url:
        return f"sqlite+aiosqlite:///{Path(url).expanduser().absolute()}"
    scheme, rest = url.split("://", 1)
    scheme = "postgresql" if scheme == "postgres" else scheme
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}://{rest}"


def _sqlite_file(url: str, create: bool) -> None:
    """Check a SQLite URL's file (``CallLog.open``): make its directory, or with
    ``create`` False insist that the file is there. The file holds callers' numbers
    and the staff's PIN hashes (S1): it is made, or kept, readable by its owner
    only (0600), and SQLite gives its -wal and -shm files the same mode.
    Raises ``StorageError``."""
    path = url.split(":///", 1)[-1]
    if not path or path == ":memory:":
        return
    if not create and not Path(path).is_file():
        raise StorageError(
            f"{Path(path).absolute()}: no call log there (the controller makes it when "
            "it first starts; check --database or $VVK_PBX_DATABASE_URL)"
        )
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        for file in (path, f"{path}-wal", f"{path}-shm"):
            if os.path.exists(file) and os.stat(file).st_mode & 0o077:
                os.chmod(file, 0o600)
    except OSError as exc:
        raise StorageError(f"{_safe(url)}: cannot open the call log: {exc}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (reports, `calls list`) never block the controller's writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of
    # the process loses nothing committed; a power cut may lose the last
    # commits but never corrupts the file (sqlite.org/pragma.html#pragma_synchronous).
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Wait for a lock instead of failing at once when another process writes.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _never_wait(dbapi_connection: Any, _record: Any) -> None:
    # The writer runs on the event loop: a lock fails at once, and is retried later.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


def _reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA query_only=ON")  # an export's connection never writes
    cursor.close()


def head_revision() -> str:
    """The newest migration's revision: each file in ``migrations/versions`` is named
    after its revision (``0007_export_audit.py`` is ``0007``; a test holds alembic to it)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def _at_head(connection: Connection) -> bool:
    """Whether the schema is at the newest migration already, asked without alembic:
    importing alembic costs a one-shot command (an export) a seventh of a second."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = [
        row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")
    ]
    return versions == [head_revision()]


def _upgrade(connection: Connection) -> None:
    if _at_head(connection):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class CallLog:
    """Async access to the call log. Open with ``await CallLog.open(url)``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._upserts: dict[str, Any] = {}
        self._writer: AsyncConnection | None = None  # PostgreSQL
        self._sqlite_writer: Connection | None = None
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, create: bool = True) -> CallLog:
        """Connect and bring the schema to the newest migration. ``url`` is a SQLAlchemy
        URL or a SQLite file path (``async_url``). With ``create`` False a SQLite
        file that does not exist is an error rather than a new empty database (a
        report run against a mistyped path must not show an empty ledger).
        Raises ``StorageError``."""
        url = async_url(url)
        if url.startswith("sqlite"):
            _sqlite_file(url, create)
        try:
            engine = create_async_engine(url)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise StorageError(f"{_safe(url)}: {exc}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StorageError(f"{_safe(url)}: cannot open the call log: {exc}") from exc
        return store

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(SQLAlchemyError):
                await self._writer.close()
            self._writer = None
        self._close_sqlite_writer()
        await self.engine.dispose()

    async def save_call(self, record: CallRecord) -> None:
        """Insert or update the call's row. Raises ``StorageError``."""
        await self.save_batch([record], [])

    async def save_leg(self, leg: Leg) -> None:
        """Insert or update a leg's row. Raises ``StorageError``."""
        await self.save_batch([], [leg])

    async def save_batch(self, records: Sequence[CallRecord], legs_: Sequence[Leg]) -> None:
        """Insert or update calls, then legs (they refer to their call), in one transaction.

        One statement per table with many parameter sets: the recorder's group
        commit. Raises ``RecordRefusedError`` when the database refused the data,
        ``StorageError`` when it failed otherwise; then nothing of the batch is
        written.

        SQLite is written by SQLAlchemy's synchronous driver on the event
        loop's own thread, a whole batch at once (about 0.3 ms). Through
        aiosqlite each statement, begin and commit is a hop to its thread
        (2 ms of CPU per one-row transaction), and a writer thread of our own
        fought the event loop for the GIL: both made INVITE→200 several times
        slower at 100 calls/s (docs/decisions.md). The writer's connection
        never waits for a lock (``busy_timeout=0``): a locked database fails
        the batch at once and the recorder retries it later, so the loop is
        never blocked waiting.
        """
        rows = (
            [_call_row(r) for r in records],
            [{f.name: getattr(leg, f.name) for f in fields(leg)} for leg in legs_],
        )
        async with self._write_lock:
            try:
                if self.engine.dialect.name == "sqlite":
                    self._write_sqlite(*rows)
                else:
                    await self._write_async(*rows)
                return
            except SQLAlchemyError as exc:
                failure = exc
        ids = ", ".join(([r.id for r in records] + [leg.id for leg in legs_])[:5])
        error = RecordRefusedError if _refused(failure) else StorageError
        raise error(f"call log write failed for {ids}: {failure}") from failure

    async def _write_async(
        self, call_rows: list[dict[str, Any]], leg_rows: list[dict[str, Any]]
    ) -> None:
        try:
            # One long-lived connection for writes: a pool checkout, return and
            # reset at every batch cost more than the batch.
            if self._writer is None:
                self._writer = await self.engine.connect()
            async with self._writer.begin():
                for table, rows in ((calls, call_rows), (legs, leg_rows)):
                    if rows:
                        await self._writer.execute(self._upsert(table), rows)
        except SQLAlchemyError:
            writer, self._writer = self._writer, None
            if writer is not None:
                with contextlib.suppress(SQLAlchemyError):
                    await writer.close()  # a broken connection is not reused
            raise

    def _write_sqlite(
        self, call_rows: list[dict[str, Any]], leg_rows: list[dict[str, Any]]
    ) -> None:
        try:
            if self._sqlite_writer is None:
                engine = create_engine(self.engine.url.set(drivername="sqlite"))
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "connect", _never_wait)
                self._sqlite_writer = engine.connect()
            with self._sqlite_writer.begin():
                for table, rows in ((calls, call_rows), (legs, leg_rows)):
                    if rows:
                        self._sqlite_writer.execute(self._upsert(table), rows)
        except SQLAlchemyError:
            self._close_sqlite_writer()
            raise

    def _close_sqlite_writer(self) -> None:
        writer, self._sqlite_writer = self._sqlite_writer, None
        if writer is not None:
            engine = writer.engine
            with contextlib.suppress(SQLAlchemyError):
                writer.close()
            engine.dispose()

    def _upsert(self, table: Any) -> Any:
        # Built once per table: constructing the ON CONFLICT clause makes column
        # proxies, which cost more than the write itself (measured by `vvk-pbx bench`).
        statement = self._upserts.get(table.name)
        if statement is None:
            insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
            base = insert(table)
            statement = self._upserts[table.name] = base.on_conflict_do_update(
                index_elements=["id"],
                set_={c.name: base.excluded[c.name] for c in table.columns if c.name != "id"},
            )
        return statement

    async def _rows(self, query: Any, what: str) -> list[Any]:
        """The rows of a read; raises ``StorageError`` saying ``what`` failed (a database
        that is down, a locked file) instead of a driver's traceback."""
        try:
            async with self.engine.connect() as connection:
                return list((await connection.execute(query)).all())
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(f"call log: {what} failed: {exc}") from exc

    async def get_call(self, call_id: str) -> CallRecord | None:
        rows = await self._rows(select(calls).where(calls.c.id == call_id), f"reading {call_id}")
        return _call(rows[0]._mapping) if rows else None

    async def open_calls(self) -> list[CallRecord]:
        """Calls the log has not seen end (``ended_at`` is null), oldest first."""
        query = select(calls).where(calls.c.ended_at.is_(None)).order_by(calls.c.arrived_at)
        return [_call(r._mapping) for r in await self._rows(query, "reading the open calls")]

    async def list_calls(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[CallRecord]:
        """Calls that arrived in ``[since, until)`` (aware), oldest first. Raises
        ``StorageError``."""
        query = select(calls).order_by(calls.c.arrived_at, calls.c.id)
        if since is not None:
            query = query.where(calls.c.arrived_at >= since)
        if until is not None:
            query = query.where(calls.c.arrived_at < until)
        return [_call(row._mapping) for row in await self._rows(query, "reading calls")]

    async def stream_calls(
        self, where: CallQuery, batch: int = 2000
    ) -> AsyncIterator[list[CallRecord]]:
        """The calls ``where`` selects, oldest first, ``batch`` at a time: keyset pages on
        (arrived_at, id), so memory stays flat over any number of rows and no cursor is
        held open between pages. Raises ``StorageError``."""
        after: tuple[datetime, str] | None = None
        while True:
            query = where.select().order_by(calls.c.arrived_at, calls.c.id).limit(batch)
            if after is not None:
                query = query.where(tuple_(calls.c.arrived_at, calls.c.id) > after)
            page = [_call(row._mapping) for row in await self._rows(query, "exporting calls")]
            if page:
                yield page
            if len(page) < batch:
                return
            after = (page[-1].arrived_at, page[-1].id)

    async def stream_rows(
        self, where: CallQuery, columns: Sequence[str], batch: int = 2000
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The ``columns`` (names of the calls table's columns, in that order) of the calls
        ``where`` selects, oldest first (``arrived_at``, ``id``), ``batch`` rows at a
        time, as plain tuples: the exports' read, which builds no ``CallRecord``
        (docs/decisions.md). Times are UTC text (``UTC_TEXT``), the trace its JSON
        text, ``within_goal`` 0 or 1, a null None; the rest as stored.

        SQLite: one statement on a synchronous connection of its own,
        read ``batch`` rows at a time in a worker thread, so the event loop runs
        while SQLite reads; the statement's read transaction lasts the export
        (WAL: writers go on). PostgreSQL: keyset pages, as ``stream_calls``.
        Memory stays flat either way. Raises ``StorageError``; ``KeyError`` for a
        name that is no column."""
        sqlite = self.engine.dialect.name == "sqlite"
        wanted = [_plain(calls.c[name], sqlite) for name in columns]
        if sqlite:
            query = where.select().with_only_columns(*wanted)
            query = query.order_by(calls.c.arrived_at, calls.c.id)
            async for page in _read_in_thread(_SqliteRead(self.engine.url, query), batch):
                yield page
            return
        # The keyset needs the last row's arrived_at and id: asked for as extra cells
        # when the caller did not ask for them, and cut off again.
        extra = [name for name in ("arrived_at", "id") if name not in columns]
        names = [*columns, *extra]
        wanted += [_plain(calls.c[name], sqlite) for name in extra]
        at, id_ = names.index("arrived_at"), names.index("id")
        after: tuple[datetime, str] | None = None
        while True:
            query = where.select().with_only_columns(*wanted)
            query = query.order_by(calls.c.arrived_at, calls.c.id).limit(batch)
            if after is not None:
                query = query.where(tuple_(calls.c.arrived_at, calls.c.id) > after)
            rows = await self._rows(query, "exporting calls")
            if rows:
                after = (utc_instant(rows[-1][at]), rows[-1][id_])
                yield [tuple(row[: len(columns)]) for row in rows]
            if len(rows) < batch:
                return

    async def count_calls(self, where: CallQuery) -> int:
        """How many calls ``where`` selects. Raises ``StorageError``."""
        query = select(func.count()).select_from(where.select().subquery())
        rows = await self._rows(query, "counting calls")
        return int(rows[0][0])

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete the calls that arrived before ``cutoff`` (aware), legs first; returns how
        many calls went (S1, retention). Raises ``StorageError``."""
        old = select(calls.c.id).where(calls.c.arrived_at < cutoff)
        try:
            async with self.engine.begin() as connection:
                await connection.execute(delete(legs).where(legs.c.call_id.in_(old)))
                result = await connection.execute(delete(calls).where(calls.c.arrived_at < cutoff))
        except SQLAlchemyError as exc:
            raise StorageError(f"call log: deleting old calls failed: {exc}") from exc
        return int(result.rowcount or 0)

    async def legs_of(self, call_id: str) -> list[Leg]:
        return (await self.legs_by_call([call_id])).get(call_id, [])

    async def legs_by_call(self, call_ids: list[str]) -> dict[str, list[Leg]]:
        """The legs of these calls, each call's in creation order: ``{call id: [Leg]}``.
        Raises ``StorageError``."""
        found: dict[str, list[Leg]] = {}
        # Chunked: SQLite allows a bounded number of bound parameters per statement.
        for start in range(0, len(call_ids), 500):
            chunk = call_ids[start : start + 500]
            query = (
                select(legs).where(legs.c.call_id.in_(chunk)).order_by(legs.c.created_at, legs.c.id)
            )
            for row in await self._rows(query, "reading legs"):
                leg = Leg(**dict(row._mapping))
                found.setdefault(leg.call_id, []).append(leg)
        return found


@dataclass(frozen=True)
class CallQuery:
    """Which calls an export takes (F1): arrived in ``[since, until)`` (aware), of a
    direction, with an outcome, answered by ``answered_by``; ``touching`` an extension
    set: called on one of ``called`` or answered by one of ``answered_among`` (a unit)."""

    since: datetime | None = None
    until: datetime | None = None
    direction: str | None = None
    outcome: str | None = None
    answered_by: str | None = None
    called: frozenset[str] | None = None
    answered_among: frozenset[str] | None = None

    def select(self) -> Any:
        query = select(calls)
        if self.since is not None:
            query = query.where(calls.c.arrived_at >= self.since)
        if self.until is not None:
            query = query.where(calls.c.arrived_at < self.until)
        if self.direction is not None:
            query = query.where(calls.c.direction == self.direction)
        if self.outcome is not None:
            query = query.where(calls.c.outcome == self.outcome)
        if self.answered_by is not None:
            query = query.where(calls.c.answered_by == self.answered_by)
        if self.called is not None or self.answered_among is not None:
            query = query.where(
                or_(
                    calls.c.called.in_(sorted(self.called or ())),
                    calls.c.answered_by.in_(sorted(self.answered_among or ())),
                )
            )
        return query

    def matches(self, record: CallRecord) -> bool:
        """``select``'s test for one record, for stores in memory (the contract tests hold
        both to the same answers)."""
        touching = self.called is not None or self.answered_among is not None
        return (
            (self.since is None or record.arrived_at >= self.since)
            and (self.until is None or record.arrived_at < self.until)
            and (self.direction is None or record.direction == self.direction)
            and (self.outcome is None or record.outcome.value == self.outcome)
            and (self.answered_by is None or record.answered_by == self.answered_by)
            and (
                not touching
                or record.called in (self.called or ())
                or record.answered_by in (self.answered_among or ())
            )
        )


def _plain(column: Any, sqlite: bool) -> Any:
    """``column`` as ``stream_rows`` gives it: the driver's plain value, no type's result
    processing (that is what costs per row)."""
    if isinstance(column.type, UtcDateTime):
        if sqlite:
            return type_coerce(column, String)  # SQLite holds it as UTC_TEXT already
        utc = func.timezone("UTC", column)
        return func.to_char(utc, "YYYY-MM-DD HH24:MI:SS.US").label(column.name)
    if isinstance(column.type, JSON):
        return type_coerce(column, String) if sqlite else column.cast(Text).label(column.name)
    if isinstance(column.type, Boolean):
        return type_coerce(column, Integer) if sqlite else column.cast(Integer).label(column.name)
    return column


class _SqliteRead:
    """One SELECT on a synchronous SQLite connection of its own; every method runs in the
    one worker thread of ``_read_in_thread``."""

    def __init__(self, url: Any, query: Any) -> None:
        self.url = url
        self.query = query
        self.connection: Connection | None = None
        self.result: CursorResult[Any] | None = None

    def fetch(self, batch: int) -> list[tuple[Any, ...]]:
        if self.result is None:
            engine = create_engine(self.url.set(drivername="sqlite"), poolclass=NullPool)
            event.listen(engine, "connect", _reader_pragmas)
            self.connection = engine.connect()
            self.result = self.connection.execute(self.query)
        # The driver's own tuples: SQLAlchemy's Row costs more per row than the cells
        # (measured), and for SQLite its result buffers nothing ahead of the cursor.
        rows: list[tuple[Any, ...]] = list(self.result.cursor.fetchmany(batch))
        return rows

    def close(self) -> None:
        connection, self.connection, self.result = self.connection, None, None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                connection.close()
            connection.engine.dispose()


async def _read_in_thread(read: _SqliteRead, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """``read``'s rows, ``batch`` at a time, each batch fetched in one worker thread (the
    SQLite connection stays in the thread that made it). Raises ``StorageError``."""
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vvk-pbx-export")
    try:
        while True:
            try:
                rows = await loop.run_in_executor(worker, read.fetch, batch)
            except (SQLAlchemyError, OSError) as exc:
                raise StorageError(f"call log: exporting calls failed: {exc}") from exc
            if rows:
                yield rows
            if len(rows) < batch:
                return
    finally:
        # Queued behind a fetch still running when the export was cancelled: never awaited.
        worker.submit(read.close)
        worker.shutdown(wait=False)


def _call_row(record: CallRecord) -> dict[str, Any]:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    values["outcome"] = record.outcome.value
    values["trace"] = list(record.trace)
    return values


def _call(row: Any) -> CallRecord:
    values = dict(row)
    values["outcome"] = Outcome(values["outcome"])
    values["trace"] = tuple(values["trace"])
    return CallRecord(**values)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
