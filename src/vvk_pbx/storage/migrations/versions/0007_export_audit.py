"""The export audit log (issue 12, S1): who exported the call log, when, with which filter,
how many rows.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vvk_pbx.storage.tables import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_audit",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("who", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("filter", sa.JSON, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
    )
    op.create_index("ix_export_audit_at", "export_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_export_audit_at", "export_audit")
    op.drop_table("export_audit")
