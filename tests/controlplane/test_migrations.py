"""Alembic migrations: upgrade is idempotent, the migrated schema matches the models, and downgrade works
(on SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from controlplane.db.engine import _alembic_config, make_engine, migrate
from controlplane.db.models import Base


async def test_migrations_upgrade_twice_match_models_and_downgrade(db_url):
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        await migrate(engine)  # a second start changes nothing

        def diff(conn):
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"tokens", "machines", "workspaces", "user_sessions", "agent_sessions", "messages"} <= tables
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), "base"))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
    finally:
        await engine.dispose()
