"""Store one batch of ingested daemon events in one transaction: the new messages (a seq already stored is
skipped), each session's last_seq, status, usage and pending approvals, and its message count.

Ingest's one writer task calls `store()` with everything queued since its last batch, so the time a batch
takes is added to every event's latency. Through the SQLAlchemy session that was about 3 ms for one event
(compiling a multi-row INSERT, the ORM session, and one aiosqlite thread trip per statement), so the
writers run the same Core statements, compiled once, straight on the driver:

- SqliteEventWriter: its own sqlite3 connection on one worker thread; a batch is one trip to that thread.
- AsyncpgEventWriter: its own asyncpg connection; the rows go in one INSERT … SELECT unnest(…).
- EngineEventWriter: through the engine, for what the two do not serve (an in-memory SQLite database).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast

from sqlalchemy import BigInteger, Float, Integer, Table, and_, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from controlplane.db.models import AgentSession, Message

__all__ = [
    "AsyncpgEventWriter",
    "EngineEventWriter",
    "EventWriter",
    "SessionGone",
    "SqliteEventWriter",
    "event_writer_for",
    "session_updates",
]

Row = dict[str, Any]


class SessionGone(Exception):
    """A row's session no longer exists (deleted while its events were on their way): nothing was stored."""


class EventWriter(Protocol):
    """Stores a batch of message rows (the keys of the messages table) and returns the rows it newly stored."""

    async def open(self) -> None: ...

    async def store(self, rows: list[Row]) -> list[Row]: ...

    async def close(self) -> None: ...


_MESSAGES = cast(Table, Message.__table__)
_SESSIONS = cast(Table, AgentSession.__table__)
_COLUMNS = ("id", "agent_session_id", "seq", "role", "content", "metadata", "status", "created_at")
_CONFLICT = ["agent_session_id", "seq"]
_NEW_KEYS = (_MESSAGES.c.agent_session_id, _MESSAGES.c.seq)

_NEWER_STATUS = and_(
    bindparam("b_status", type_=_SESSIONS.c.status.type).is_not(None),
    bindparam("b_status_seq", type_=BigInteger()) > _SESSIONS.c.status_seq,
)
# One executemany for every session of a batch; a NULL status or error keeps the stored one.
UPDATE_SESSION = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("b_id"), _SESSIONS.c.last_seq < bindparam("b_seq"))
    .values(
        last_seq=bindparam("b_seq"),
        last_active=bindparam("b_active", type_=_SESSIONS.c.last_active.type),
        # A status older than the stored one's (a late event after a PATCH the daemon already answered) is not applied.
        status=case((_NEWER_STATUS, bindparam("b_status", type_=_SESSIONS.c.status.type)), else_=_SESSIONS.c.status),
        status_seq=case((_NEWER_STATUS, bindparam("b_status_seq", type_=BigInteger())), else_=_SESSIONS.c.status_seq),
        last_error=func.coalesce(bindparam("b_error", type_=_SESSIONS.c.last_error.type), _SESSIONS.c.last_error),
        provider_session_id=func.coalesce(
            bindparam("b_provider", type_=_SESSIONS.c.provider_session_id.type), _SESSIONS.c.provider_session_id
        ),
        pending_approvals=func.coalesce(
            bindparam("b_pending", type_=_SESSIONS.c.pending_approvals.type), _SESSIONS.c.pending_approvals
        ),
        usage_input_tokens=_SESSIONS.c.usage_input_tokens + bindparam("b_in", type_=BigInteger()),
        usage_output_tokens=_SESSIONS.c.usage_output_tokens + bindparam("b_out", type_=BigInteger()),
        usage_cache_read_tokens=_SESSIONS.c.usage_cache_read_tokens + bindparam("b_cache_read", type_=BigInteger()),
        usage_cache_creation_tokens=_SESSIONS.c.usage_cache_creation_tokens
        + bindparam("b_cache_creation", type_=BigInteger()),
        usage_turns=_SESSIONS.c.usage_turns + bindparam("b_turns", type_=Integer()),
        usage_duration_ms=_SESSIONS.c.usage_duration_ms + bindparam("b_duration", type_=BigInteger()),
        # NULL until a turn says what it cost.
        usage_cost_usd=case(
            (bindparam("b_cost", type_=Float()).is_(None), _SESSIONS.c.usage_cost_usd),
            else_=func.coalesce(_SESSIONS.c.usage_cost_usd, 0.0) + bindparam("b_cost", type_=Float()),
        ),
    )
)

# Every stored row counts, whatever its seq (the update above skips seqs at or below the stored last_seq).
COUNT_MESSAGES = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("b_id"))
    .values(message_count=_SESSIONS.c.message_count + bindparam("b_count", type_=BigInteger()))
)

# One row per execution, answering its key only when it was stored (SQLite; sqlite3 has no executemany
# with RETURNING, and a row is microseconds on the writer's own thread).
_INSERT_ONE_SQLITE = (
    sqlite_insert(_MESSAGES)
    .values({c: bindparam(c, type_=_MESSAGES.c[c].type) for c in _COLUMNS})
    .on_conflict_do_nothing(index_elements=_CONFLICT)
    .returning(*_NEW_KEYS)
)
# Every row of a batch in one statement: one array per column, unnested in step (PostgreSQL).
_INSERT_ARRAYS_PG = (
    pg_insert(_MESSAGES)
    .from_select(
        list(_COLUMNS), select(*(func.unnest(bindparam(c, type_=ARRAY(_MESSAGES.c[c].type))) for c in _COLUMNS))
    )
    .on_conflict_do_nothing(index_elements=_CONFLICT)
    .returning(*_NEW_KEYS)
)


def _count(value: Any) -> int:
    return max(int(value), 0) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def session_updates(stored: list[Row]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parameters of UPDATE_SESSION and of COUNT_MESSAGES for the sessions of `stored`.

    Per session: last_seq and last_active of its newest stored event, the latest status it reported and,
    when one of them failed, that failure's message, the provider session id its agent announced, the
    daemon's latest count of pending approvals, the usage of the turns that ended (added to the session's
    totals), and how many rows were stored.
    """
    out: dict[str, dict[str, Any]] = {}
    for r in stored:
        sid = r["agent_session_id"]
        values = out.setdefault(
            sid,
            {
                "b_id": sid,
                "b_seq": -1,
                "b_active": None,
                "b_status": None,
                "b_status_seq": -1,
                "b_error": None,
                "b_provider": None,
                "b_pending": None,
                "b_in": 0,
                "b_out": 0,
                "b_cache_read": 0,
                "b_cache_creation": 0,
                "b_turns": 0,
                "b_duration": 0,
                "b_cost": None,
            },
        )
        usage = r["metadata"].get("turn_usage") if r["metadata"].get("turn_complete") else None
        if isinstance(usage, dict):
            values["b_turns"] += 1
            for key, param in (
                ("input_tokens", "b_in"),
                ("output_tokens", "b_out"),
                ("cache_read_tokens", "b_cache_read"),
                ("cache_creation_tokens", "b_cache_creation"),
                ("duration_ms", "b_duration"),
            ):
                values[param] += _count(usage.get(key))
            cost = usage.get("cost_usd")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                values["b_cost"] = (values["b_cost"] or 0.0) + float(cost)
        provider_id = r["metadata"].get("provider_session_id")
        if isinstance(provider_id, str) and provider_id:
            values["b_provider"] = provider_id  # the agent announced (or changed) its own session id
        pending = r["metadata"].get("pending_approvals")
        if isinstance(pending, (int, float)) and not isinstance(pending, bool) and r["seq"] > values["b_seq"]:
            values["b_pending"] = int(pending)  # the daemon's count as of this approval event
        if r["seq"] > values["b_seq"]:
            values["b_seq"] = r["seq"]
            values["b_active"] = r["created_at"]
        if r["status"] and r["seq"] > values["b_status_seq"]:
            values["b_status"] = r["status"]
            values["b_status_seq"] = r["seq"]
            if r["status"] == "failed":
                c = r["content"]
                values["b_error"] = c.get("message") or c.get("text") or "agent failed"
    counts = Counter(r["agent_session_id"] for r in stored)
    return list(out.values()), [{"b_id": sid, "b_count": n} for sid, n in counts.items()]


class _Compiled:
    """A statement compiled once for a driver: its SQL, and its parameters in order, each converted as its
    type converts it (the JSON columns' serializer, SQLite's datetime text)."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect, *, convert: bool = True) -> None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect))
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        self.defaults = {n: b.value for n, b in compiled.binds.items() if not b.required}
        processors: list[Callable[[Any], Any] | None] = [
            compiled.binds[n].type.bind_processor(dialect) if convert else None for n in self.names
        ]
        self._params = tuple(zip(self.names, processors, strict=True))

    def values(self, params: dict[str, Any]) -> list[Any]:
        out = []
        for name, process in self._params:
            value = params[name] if name in params else self.defaults[name]
            out.append(value if process is None or value is None else process(value))
        return out


class SqliteEventWriter:
    """Batches on a sqlite3 connection of its own, on one worker thread (a busy file waits there, not on
    the event loop)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 30_000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        dialect = sqlite.dialect(paramstyle="qmark")
        self._insert = _Compiled(_INSERT_ONE_SQLITE, dialect)
        self._update = _Compiled(UPDATE_SESSION, dialect)
        self._count = _Compiled(COUNT_MESSAGES, dialect)

    async def open(self) -> None:
        """Start the worker thread and open the connection on it."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-sqlite")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the engine's connections (controlplane/db/engine.py)
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        self._conn = conn

    async def store(self, rows: list[Row]) -> list[Row]:
        if self._executor is None:
            raise RuntimeError("the event writer is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._store, rows)

    def _store(self, rows: list[Row]) -> list[Row]:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the event writer is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            stored = [r for r in rows if conn.execute(self._insert.sql, self._insert.values(r)).fetchall()]
            if stored:
                updates, counts = session_updates(stored)
                conn.executemany(self._update.sql, [self._update.values(u) for u in updates])
                conn.executemany(self._count.sql, [self._count.values(c) for c in counts])
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise SessionGone(str(exc)) from exc
            raise
        return stored

    async def close(self) -> None:
        """Close the connection and stop the thread (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class AsyncpgEventWriter:
    """Batches on an asyncpg connection of its own (opened again after any error)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        dialect = postgresql.asyncpg.dialect()
        # asyncpg takes datetimes as they are; the arrays are built here.
        self._insert = _Compiled(_INSERT_ARRAYS_PG, dialect, convert=False)
        self._update = _Compiled(UPDATE_SESSION, dialect)
        self._count = _Compiled(COUNT_MESSAGES, dialect)

    async def open(self) -> None:
        """Open the connection (so a wrong URL fails here)."""
        await self._connection()

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            import asyncpg

            self._conn = await asyncpg.connect(self._dsn)
        return self._conn

    async def store(self, rows: list[Row]) -> list[Row]:
        import asyncpg

        conn = await self._connection()
        arrays = {c: [r[c] for r in rows] for c in _COLUMNS}
        arrays["content"] = [json.dumps(v) for v in arrays["content"]]
        arrays["metadata"] = [json.dumps(v) for v in arrays["metadata"]]
        try:
            async with conn.transaction():
                new = {(sid, seq) for sid, seq in await conn.fetch(self._insert.sql, *self._insert.values(arrays))}
                stored = [r for r in rows if (r["agent_session_id"], r["seq"]) in new]
                if stored:
                    updates, counts = session_updates(stored)
                    await conn.executemany(self._update.sql, [self._update.values(u) for u in updates])
                    await conn.executemany(self._count.sql, [self._count.values(c) for c in counts])
        except asyncpg.ForeignKeyViolationError as exc:
            raise SessionGone(str(exc)) from exc
        except BaseException:
            self._conn = None
            conn.terminate()  # whatever state it is in, the next batch starts on a fresh connection
            raise
        return stored

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


class EngineEventWriter:
    """Batches through the SQLAlchemy engine's sessions."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def open(self) -> None:
        return None

    async def store(self, rows: list[Row]) -> list[Row]:
        try:
            async with self._sessionmaker() as db, db.begin():
                ins = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
                # One statement for the batch: ingest's 2,000 rows at most, 16,000 parameters (SQLite takes 32,766).
                stmt = (
                    ins(_MESSAGES).values(rows).on_conflict_do_nothing(index_elements=_CONFLICT).returning(*_NEW_KEYS)
                )
                new = {(sid, seq) for sid, seq in (await db.execute(stmt)).all()}
                stored = [r for r in rows if (r["agent_session_id"], r["seq"]) in new]
                if stored:
                    updates, counts = session_updates(stored)
                    await db.execute(UPDATE_SESSION, updates)
                    await db.execute(COUNT_MESSAGES, counts)
        except IntegrityError as exc:
            raise SessionGone(str(exc)) from exc
        return stored

    async def close(self) -> None:
        return None


def event_writer_for(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> EventWriter:
    """The fastest writer that serves `engine`'s database."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            return SqliteEventWriter(database)
    elif engine.dialect.driver == "asyncpg":
        return AsyncpgEventWriter(url.set(drivername="postgresql").render_as_string(hide_password=False))
    return EngineEventWriter(sessionmaker)
