"""dial-out machines: enrollment token and machine credential (both stored hashed), and which replica holds
each machine's tunnel since when

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dial_out", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("enrollment_hash", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("enrollment_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("credential_hash", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("tunnel_replica", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("connected_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_machines_enrollment_hash", ["enrollment_hash"], unique=True)
        batch_op.create_index("ix_machines_credential_hash", ["credential_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_index("ix_machines_credential_hash")
        batch_op.drop_index("ix_machines_enrollment_hash")
        for column in (
            "last_seen",
            "connected_since",
            "tunnel_replica",
            "credential_hash",
            "enrollment_expires_at",
            "enrollment_hash",
            "dial_out",
        ):
            batch_op.drop_column(column)
