"""the session list's index in its own order: newest first, then by id (created_at DESC, id), so that a page is
read straight from the index instead of sorting the ties of each created_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_sessions_owner_created")
        batch_op.create_index(
            "ix_agent_sessions_owner_newest", ["owner", sa.column("created_at").desc(), "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_sessions_owner_newest")
        batch_op.create_index("ix_agent_sessions_owner_created", ["owner", "created_at", "id"], unique=False)
