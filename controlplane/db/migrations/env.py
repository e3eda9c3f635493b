"""Alembic environment: always run with a connection handed in by controlplane.db.engine.migrate."""

from __future__ import annotations

from alembic import context

from controlplane.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through controlplane.db.engine.migrate (python -m controlplane migrate)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
