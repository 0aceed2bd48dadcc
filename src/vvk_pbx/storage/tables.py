"""The database tables (SQLAlchemy 2). Changes go through an Alembic migration in ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC and read back as aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r}: the call log stores aware datetimes only")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        result: datetime = value
        return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)


metadata = MetaData()

calls = Table(
    "calls",
    metadata,
    Column("id", String(64), primary_key=True),  # the caller's channel id
    Column("direction", String(16), nullable=False),
    Column("caller", String(64), nullable=False),
    Column("called", String(64), nullable=False),
    Column("arrived_at", UtcDateTime, nullable=False),
    Column("ring_started_at", UtcDateTime),
    Column("answered_at", UtcDateTime),
    Column("answered_by", String(64)),
    Column("ended_at", UtcDateTime),
    Column("outcome", String(32), nullable=False),
    Column("rings", Integer),
    Column("within_goal", Boolean),
    Column("trace", JSON, nullable=False),
    Index("ix_calls_arrived_at", "arrived_at"),
)

legs = Table(
    "call_legs",
    metadata,
    Column("id", String(64), primary_key=True),  # the leg's channel id
    Column("call_id", String(64), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint", String(128), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("ring_started_at", UtcDateTime),
    Column("answered_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("status", String(32), nullable=False),
    Index("ix_call_legs_call_id", "call_id"),
)
