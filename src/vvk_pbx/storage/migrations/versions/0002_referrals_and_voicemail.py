"""Referrals (R1-R4) and the voicemail callback ledger (V1-V2).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vvk_pbx.storage.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("extension", sa.String(16), nullable=False),
        sa.Column("reason", sa.Integer, nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime, nullable=False),
        sa.Column("note", sa.String(200)),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("cleared_at", UtcDateTime),
    )
    op.create_index("ix_referrals_extension_ends_at", "referrals", ["extension", "ends_at"])
    op.create_table(
        "voicemail_messages",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("extension", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64)),
        sa.Column("left_at", UtcDateTime, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("recording", sa.String(128), nullable=False),
        sa.Column("deadline_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("called_back_at", UtcDateTime),
    )
    op.create_index("ix_voicemail_messages_extension", "voicemail_messages", ["extension"])
    op.create_index("ix_voicemail_messages_deadline_at", "voicemail_messages", ["deadline_at"])


def downgrade() -> None:
    op.drop_table("voicemail_messages")
    op.drop_table("referrals")
