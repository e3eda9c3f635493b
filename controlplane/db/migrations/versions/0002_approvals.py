"""approvals, usage and budgets: pending count and usage totals per session; allow-list, approval
timeout and budget defaults per workspace

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_approvals", sa.Integer(), nullable=False, server_default="0"))
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "duration_ms"):
            batch_op.add_column(sa.Column(f"usage_{name}", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("usage_cost_usd", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("usage_turns", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_tools", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("approval_timeout_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("max_turns", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_cost_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("max_cost_usd")
        batch_op.drop_column("max_turns")
        batch_op.drop_column("approval_timeout_seconds")
        batch_op.drop_column("allowed_tools")
    with op.batch_alter_table("agent_sessions", schema=None) as batch_op:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
            "duration_ms",
            "cost_usd",
            "turns",
        ):
            batch_op.drop_column(f"usage_{name}")
        batch_op.drop_column("pending_approvals")
