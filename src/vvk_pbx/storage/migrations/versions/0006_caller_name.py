"""The caller's display name in the call log (issue 12, F1): the console, the export and the
report show who called, not only the number.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.add_column(
            sa.Column("caller_name", sa.String(128), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as table:
        table.drop_column("caller_name")
