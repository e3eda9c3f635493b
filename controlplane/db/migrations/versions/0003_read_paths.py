"""read paths: a stored message count per session (kept by ingest, import and delete) and an index in the
session list's order

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_count", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_index("ix_agent_sessions_owner_created", ["owner", "created_at", "id"], unique=False)
    op.execute(
        "UPDATE agent_sessions SET message_count = "
        "(SELECT count(*) FROM messages WHERE messages.agent_session_id = agent_sessions.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_sessions_owner_created")
        batch_op.drop_column("message_count")
