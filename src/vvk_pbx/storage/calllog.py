"""The call log store: one row per call and per leg, written at every state change (A1, F1).

SQLite in WAL mode is the embedded default; a ``postgresql+asyncpg://`` URL
selects PostgreSQL (the multi-node store). The schema is made and upgraded by
the Alembic migrations in ``migrations/`` when the store opens.

Errors::

    StorageError(RuntimeError)   the database could not be opened, migrated or
                                 written (the message names the URL and why)
"""

from __future__ import annotations

import os
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.storage.tables import calls, legs

MIGRATIONS = Path(__file__).parent / "migrations"
ENV_VAR = "VVK_PBX_DATABASE_URL"


class StorageError(RuntimeError):
    """The call log could not be opened, migrated or written."""


def default_url(state_dir: Path) -> str:
    """``$VVK_PBX_DATABASE_URL``, else a SQLite file in the state directory."""
    return os.environ.get(ENV_VAR) or f"sqlite+aiosqlite:///{state_dir / 'calls.sqlite3'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (reports, `calls list`) never block the controller's writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    # Wait for a lock instead of failing at once when another process writes.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class CallLog:
    """Async access to the call log. Open with ``await CallLog.open(url)``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str) -> CallLog:
        """Connect and bring the schema to the newest migration. Raises ``StorageError``."""
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
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
        await self.engine.dispose()

    async def save_call(self, record: CallRecord) -> None:
        """Insert or update the call's row. Raises ``StorageError``."""
        values = {f.name: getattr(record, f.name) for f in fields(record)}
        values["outcome"] = record.outcome.value
        values["trace"] = list(record.trace)
        await self._upsert(calls, values)

    async def save_leg(self, leg: Leg) -> None:
        """Insert or update a leg's row. Raises ``StorageError``."""
        await self._upsert(legs, {f.name: getattr(leg, f.name) for f in fields(leg)})

    async def _upsert(self, table: Any, values: dict[str, Any]) -> None:
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"}
        )
        try:
            async with self.engine.begin() as connection:
                await connection.execute(statement)
        except SQLAlchemyError as exc:
            raise StorageError(f"call log write failed for {values['id']}: {exc}") from exc

    async def get_call(self, call_id: str) -> CallRecord | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(calls).where(calls.c.id == call_id))).first()
        return None if row is None else _call(row._mapping)

    async def list_calls(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[CallRecord]:
        """Calls that arrived in ``[since, until)`` (aware), oldest first."""
        query = select(calls).order_by(calls.c.arrived_at, calls.c.id)
        if since is not None:
            query = query.where(calls.c.arrived_at >= since)
        if until is not None:
            query = query.where(calls.c.arrived_at < until)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_call(row._mapping) for row in rows]

    async def legs_of(self, call_id: str) -> list[Leg]:
        return (await self.legs_by_call([call_id])).get(call_id, [])

    async def legs_by_call(self, call_ids: list[str]) -> dict[str, list[Leg]]:
        """The legs of these calls, each call's in creation order: ``{call id: [Leg]}``."""
        found: dict[str, list[Leg]] = {}
        # Chunked: SQLite allows a bounded number of bound parameters per statement.
        for start in range(0, len(call_ids), 500):
            chunk = call_ids[start : start + 500]
            query = (
                select(legs).where(legs.c.call_id.in_(chunk)).order_by(legs.c.created_at, legs.c.id)
            )
            async with self.engine.connect() as connection:
                rows = (await connection.execute(query)).all()
            for row in rows:
                leg = Leg(**dict(row._mapping))
                found.setdefault(leg.call_id, []).append(leg)
        return found


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
