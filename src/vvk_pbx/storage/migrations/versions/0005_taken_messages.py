"""Messages an operator takes on the console (issue 11, V2): the caller's name, the note and
who took it; such a message has no recording ("").

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("voicemail_messages") as table:
        table.add_column(
            sa.Column("caller_name", sa.String(128), nullable=False, server_default="")
        )
        table.add_column(sa.Column("note", sa.Text, nullable=False, server_default=""))
        table.add_column(sa.Column("taken_by", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("voicemail_messages") as table:
        table.drop_column("taken_by")
        table.drop_column("note")
        table.drop_column("caller_name")
