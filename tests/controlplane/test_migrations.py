"""Alembic migrations: upgrade is idempotent, the migrated schema matches the models, and downgrade works
(on SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


async def test_migration_0003_stores_each_sessions_message_count(db_url):
    engine = make_engine(db_url)
    try:
        await migrate(engine, "0002")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO agent_sessions (id, owner, agent_id, status, data, imported, launched, last_seq, "
                    "created_at, pending_approvals, usage_input_tokens, usage_output_tokens, usage_cache_read_tokens, "
                    "usage_cache_creation_tokens, usage_turns, usage_duration_ms) VALUES "
                    "(:id, 'alice', 'CLAUDE_CODE', 'created', '{}', false, false, 0, CURRENT_TIMESTAMP, "
                    "0, 0, 0, 0, 0, 0, 0)"
                ),
                [{"id": "s-three"}, {"id": "s-none"}],
            )
            await conn.execute(
                text(
                    "INSERT INTO messages (id, agent_session_id, seq, role, content, metadata, created_at) "
                    "VALUES (:id, 's-three', :seq, 'user', '{}', '{}', CURRENT_TIMESTAMP)"
                ),
                [{"id": f"m{i}", "seq": i} for i in (1, 2, None)],
            )
        await migrate(engine)
        async with engine.connect() as conn:
            counts = dict((await conn.execute(text("SELECT id, message_count FROM agent_sessions"))).all())
        assert counts == {"s-three": 3, "s-none": 0}
    finally:
        await engine.dispose()
