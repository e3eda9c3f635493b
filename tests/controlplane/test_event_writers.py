"""The ingest's event writers (controlplane/db/event_writers.py) on real SQLite files and a real PostgreSQL
server: the raw writers store exactly what the engine's writer stores, skip seqs already stored, refuse a
batch whose session is gone, wait for a busy SQLite file off the event loop, and start again on a fresh
PostgreSQL connection after the server killed theirs."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from controlplane.db.engine import make_engine, make_sessionmaker, migrate
from controlplane.db.event_writers import (
    AsyncpgEventWriter,
    EngineEventWriter,
    EventWriter,
    SessionGone,
    SqliteEventWriter,
    event_writer_for,
)
from controlplane.db.models import AgentSession, Message
from tests.support.postgres import PostgresCluster
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(60)

_T0 = datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)
_SESSION_COLUMNS = (
    "last_seq",
    "status",
    "status_seq",
    "last_error",
    "last_active",
    "provider_session_id",
    "pending_approvals",
    "usage_input_tokens",
    "usage_output_tokens",
    "usage_turns",
    "usage_cost_usd",
    "message_count",
)


def _row(sid: str, seq: int, **extra: Any) -> dict[str, Any]:
    row = {
        "id": f"msg-{sid}-{seq}",
        "agent_session_id": sid,
        "seq": seq,
        "role": "assistant",
        "content": {"type": "text", "text": f"reply {seq} — ünïcode"},
        "metadata": {},
        "status": None,
        "created_at": _T0 + timedelta(seconds=seq),
    }
    row.update(extra)
    return row


# Two sessions' events, with a status change, a failure, a turn's usage, a provider id and approvals.
_BATCHES = [
    [
        _row("s1", 1, role="system", status="active", metadata={"provider_session_id": "prov-1"}),
        _row("s2", 1),
        _row("s1", 2, metadata={"pending_approvals": 2}),
    ],
    [
        _row("s1", 3, metadata={"turn_complete": True, "turn_usage": {"input_tokens": 7, "cost_usd": 0.25}}),
        _row("s2", 2, role="system", status="failed", content={"message": "agent crashed"}),
    ],
]


class _Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url)
        self.sessionmaker = make_sessionmaker(self.engine)

    async def setup(self) -> None:
        await migrate(self.engine)
        async with self.sessionmaker() as db, db.begin():
            for sid in ("s1", "s2"):
                db.add(AgentSession(id=sid, owner="alice", agent_id="claude_code", status="created", launched=True))

    async def stored(self) -> tuple[list[tuple], list[tuple]]:
        async with self.sessionmaker() as db:
            messages = (
                await db.execute(
                    select(
                        Message.id,
                        Message.agent_session_id,
                        Message.seq,
                        Message.role,
                        Message.content,
                        Message.meta,
                        Message.status,
                        Message.created_at,
                    ).order_by(Message.agent_session_id, Message.seq)
                )
            ).all()
            sessions = (
                await db.execute(
                    select(*(getattr(AgentSession, c) for c in _SESSION_COLUMNS)).order_by(AgentSession.id)
                )
            ).all()
        return [tuple(m) for m in messages], [tuple(s) for s in sessions]


async def _database(url: str) -> _Database:
    db = _Database(url)
    await db.setup()
    return db


@pytest.fixture
async def pg_urls(postgres_cluster: PostgresCluster) -> AsyncIterator[tuple[str, str]]:
    first, first_url = postgres_cluster.create_database()
    second, second_url = postgres_cluster.create_database()
    try:
        yield first_url, second_url
    finally:
        postgres_cluster.drop_database(first)
        postgres_cluster.drop_database(second)


async def _write_all(writer: EventWriter) -> list[list[tuple[str, int]]]:
    await writer.open()
    try:
        out = []
        for batch in [*_BATCHES, _BATCHES[0]]:  # the last batch again: every seq is already stored
            out.append([(r["agent_session_id"], r["seq"]) for r in await writer.store(batch)])
        return out
    finally:
        await writer.close()


async def _raw_and_engine_agree(raw_db: _Database, engine_db: _Database, raw: EventWriter) -> None:
    try:
        raw_new = await _write_all(raw)
        engine_new = await _write_all(EngineEventWriter(engine_db.sessionmaker))
        assert raw_new == engine_new == [[("s1", 1), ("s2", 1), ("s1", 2)], [("s1", 3), ("s2", 2)], []]
        raw_stored, engine_stored = await raw_db.stored(), await engine_db.stored()
        assert raw_stored == engine_stored
        messages, sessions = raw_stored
        assert len(messages) == 5
        assert sessions[0] == (3, "active", 1, None, _T0 + timedelta(seconds=3), "prov-1", 2, 7, 0, 1, 0.25, 3)
        assert sessions[1][:4] == (2, "failed", 2, "agent crashed")
        assert sessions[1][-1] == 2
    finally:
        await raw_db.engine.dispose()
        await engine_db.engine.dispose()


async def test_the_sqlite_writer_stores_what_the_engine_writer_stores(tmp_path) -> None:
    raw_db = await _database(f"sqlite+aiosqlite:///{tmp_path / 'raw.sqlite3'}")
    engine_db = await _database(f"sqlite+aiosqlite:///{tmp_path / 'engine.sqlite3'}")
    raw = event_writer_for(raw_db.engine, raw_db.sessionmaker)
    assert isinstance(raw, SqliteEventWriter)
    await _raw_and_engine_agree(raw_db, engine_db, raw)


async def test_the_asyncpg_writer_stores_what_the_engine_writer_stores(pg_urls: tuple[str, str]) -> None:
    raw_db, engine_db = await _database(pg_urls[0]), await _database(pg_urls[1])
    raw = event_writer_for(raw_db.engine, raw_db.sessionmaker)
    assert isinstance(raw, AsyncpgEventWriter)
    await _raw_and_engine_agree(raw_db, engine_db, raw)


async def _session_gone_stores_nothing(db: _Database, writer: EventWriter) -> None:
    await writer.open()
    try:
        async with db.sessionmaker() as s, s.begin():
            await s.execute(delete(AgentSession).where(AgentSession.id == "s2"))
        with pytest.raises(SessionGone):
            await writer.store(_BATCHES[0])
        messages, _ = await db.stored()
        assert messages == []  # s1's rows of the refused batch are not stored either
        stored = await writer.store([r for r in _BATCHES[0] if r["agent_session_id"] == "s1"])
        assert [(r["agent_session_id"], r["seq"]) for r in stored] == [("s1", 1), ("s1", 2)]
    finally:
        await writer.close()
        await db.engine.dispose()


async def test_a_batch_for_a_deleted_session_is_refused_whole_on_sqlite(tmp_path) -> None:
    db = await _database(f"sqlite+aiosqlite:///{tmp_path / 'cp.sqlite3'}")
    await _session_gone_stores_nothing(db, SqliteEventWriter(str(tmp_path / "cp.sqlite3")))


async def test_a_batch_for_a_deleted_session_is_refused_whole_on_postgres(pg_urls: tuple[str, str]) -> None:
    db = await _database(pg_urls[0])
    await _session_gone_stores_nothing(db, event_writer_for(db.engine, db.sessionmaker))


async def test_the_sqlite_writer_waits_for_a_busy_file_without_holding_the_event_loop(tmp_path) -> None:
    path = tmp_path / "cp.sqlite3"
    db = await _database(f"sqlite+aiosqlite:///{path}")
    writer = SqliteEventWriter(str(path))
    await writer.open()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the file
        store = asyncio.create_task(writer.store(_BATCHES[0]))
        ticks = 0
        for _ in range(10):  # the loop keeps running while the writer waits for the lock
            await asyncio.sleep(0.02)
            ticks += 1
        assert not store.done()
        holder.execute("COMMIT")
        stored = await asyncio.wait_for(store, 10)
        assert ticks == 10 and len(stored) == 3
    finally:
        holder.close()
        await writer.close()
        await db.engine.dispose()


async def test_a_file_busy_past_the_timeout_raises_the_lock_error_and_the_next_batch_is_stored(tmp_path) -> None:
    path = tmp_path / "cp.sqlite3"
    db = await _database(f"sqlite+aiosqlite:///{path}")
    writer = SqliteEventWriter(str(path), busy_timeout_ms=100)
    await writer.open()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await writer.store(_BATCHES[0])
        holder.execute("COMMIT")
        stored = await writer.store(_BATCHES[0])  # the writer's connection is still usable
        assert len(stored) == 3
    finally:
        holder.close()
        await writer.close()
        await db.engine.dispose()


async def test_the_asyncpg_writer_opens_a_new_connection_after_the_server_killed_its_own(
    pg_urls: tuple[str, str],
) -> None:
    db = await _database(pg_urls[0])
    writer = event_writer_for(db.engine, db.sessionmaker)
    assert isinstance(writer, AsyncpgEventWriter)
    await writer.open()
    dsn = make_url(pg_urls[0]).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await writer.store(_BATCHES[0])
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

        async def _killed() -> bool:
            others = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return others == 0

        await poll(_killed, what="the writer's connection killed")
        try:
            stored = await writer.store(_BATCHES[1])
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
            # The dead connection was found by this store: dropped, and the next one opens a fresh one.
            stored = await writer.store(_BATCHES[1])
        assert [(r["agent_session_id"], r["seq"]) for r in stored] == [("s1", 3), ("s2", 2)]
        messages, sessions = await db.stored()
        assert len(messages) == 5 and sessions[0][-1] == 3 and sessions[1][-1] == 2
    finally:
        await admin.close()
        await writer.close()
        await db.engine.dispose()
