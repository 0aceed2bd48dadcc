"""Access (S1): API tokens and web sessions, kept as hashes; who cleared a referral and who
called a message back.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vvk_pbx.storage.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("extension", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    with op.batch_alter_table("referrals") as table:
        table.add_column(sa.Column("cleared_by", sa.String(64)))
    with op.batch_alter_table("voicemail_messages") as table:
        table.add_column(sa.Column("called_back_by", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("voicemail_messages") as table:
        table.drop_column("called_back_by")
    with op.batch_alter_table("referrals") as table:
        table.drop_column("cleared_by")
    op.drop_table("web_sessions")
    op.drop_table("api_tokens")
