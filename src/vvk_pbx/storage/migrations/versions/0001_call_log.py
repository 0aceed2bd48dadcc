"""The call log: one row per call, one per outgoing leg.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vvk_pbx.storage.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("called", sa.String(64), nullable=False),
        sa.Column("arrived_at", UtcDateTime, nullable=False),
        sa.Column("ring_started_at", UtcDateTime),
        sa.Column("answered_at", UtcDateTime),
        sa.Column("answered_by", sa.String(64)),
        sa.Column("ended_at", UtcDateTime),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("rings", sa.Integer),
        sa.Column("within_goal", sa.Boolean),
        sa.Column("trace", sa.JSON, nullable=False),
    )
    op.create_index("ix_calls_arrived_at", "calls", ["arrived_at"])
    op.create_table(
        "call_legs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "call_id", sa.String(64), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("ring_started_at", UtcDateTime),
        sa.Column("answered_at", UtcDateTime),
        sa.Column("ended_at", UtcDateTime),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_index("ix_call_legs_call_id", "call_legs", ["call_id"])


def downgrade() -> None:
    op.drop_table("call_legs")
    op.drop_table("calls")
