"""Async engine and session factory; runs the Alembic migrations programmatically."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["is_sqlite", "make_engine", "make_sessionmaker", "migrate"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str) -> AsyncEngine:
    """An engine for `url`; for SQLite creates the file's directory and turns on foreign keys, WAL and
    synchronous=NORMAL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            db_file = Path(parsed.database)
            if not db_file.parent.exists():
                db_file.parent.mkdir(parents=True, mode=0o700)
            # Tokens' hashes, sealed machine tokens and every conversation: readable by the owner only
            # (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(db_file, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(db_file, 0o600)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL still never corrupts the database; a power loss may drop the last commits,
            # which ingest re-reads from the daemon by seq. FULL would fsync on every event's commit.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(conn: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database to `revision` (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_alembic_config(sync_conn), revision))
