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
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
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
    Column("caller_name", String(128), nullable=False, server_default=""),  # issue 12
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

# R1-R4: every referral ever set; clearing sets cleared_at, nothing is deleted.
referrals = Table(
    "referrals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("extension", String(16), nullable=False),
    Column("reason", Integer, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),  # the return time
    Column("note", String(200)),
    Column("set_by", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("cleared_at", UtcDateTime),
    Column("cleared_by", String(64)),
    Index("ix_referrals_extension_ends_at", "extension", "ends_at"),
)

# V1-V2: the callback ledger, one row per voicemail message.
messages = Table(
    "voicemail_messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("extension", String(16), nullable=False),
    Column("caller", String(64), nullable=False),
    Column("call_id", String(64)),
    Column("left_at", UtcDateTime, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("recording", String(128), nullable=False),
    Column("deadline_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # new, heard, called_back, deleted
    Column("called_back_at", UtcDateTime),
    Column("called_back_by", String(64)),
    # A message an operator took (issue 11): no recording, the caller's name and a note.
    Column("caller_name", String(128), nullable=False, server_default=""),
    Column("note", Text, nullable=False, server_default=""),
    Column("taken_by", String(64)),
    Index("ix_voicemail_messages_extension", "extension"),
    Index("ix_voicemail_messages_deadline_at", "deadline_at"),
)

# R2, V1: staff PINs, hashed; wrong attempts and the lock live here so every node sees them.
pins = Table(
    "staff_pins",
    metadata,
    Column("extension", String(16), primary_key=True),
    Column("pin_hash", String(128), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UtcDateTime),
)

# S1: machines' bearer tokens and browsers' sessions, each kept as a SHA-256 of the secret.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("extension", String(16), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# S1, F1: every export of the call log: who, when, which filter, how many rows.
export_audit = Table(
    "export_audit",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("who", String(64), nullable=False),
    Column("format", String(16), nullable=False),
    Column("filter", JSON, nullable=False),
    Column("rows", Integer, nullable=False),
    Index("ix_export_audit_at", "at"),
)
