"""The reads web apps poll — a session's detail, the session list, a session's message pages — as Core
queries answered with JSON bytes.

Every other route goes through an ORM session and FastAPI's response-model validation. These do not,
because profiling the running server (py-spy; docs/BENCHMARKS.md) showed where a read's time went:

- SQLAlchemy's engine. On SQLite, a read made five round trips to aiosqlite's worker thread (cursor,
  execute, fetch, close, rollback), and under load each one waited for the GIL. On PostgreSQL, the pool
  pinged each connection and rolled it back afterwards: three round trips to the server. So the reads go
  straight to the driver (db/raw_readers.py). On SQLite that is a synchronous read-only connection on the
  event loop's thread: an indexed read of a WAL file takes tens of microseconds and never waits for a
  writer. If the file is ever busy anyway (a WAL recovery), the read falls back to the async engine. On
  PostgreSQL it is an asyncpg pool of its own, with prepared statements: one round trip.
- Building ORM objects, and validating again what the database just returned. Here rows go to dicts,
  and orjson serializes them (a third of pydantic-core's time for a list of 50; pydantic-core would take
  anything orjson refused, such as an integer beyond 64 bits, though the API stores such numbers as
  floats). These are the same bytes the response models give, with the same datetimes and floats
  (tests/controlplane/test_reads.py compares them).
- Counting each session's messages per request. The count is a column now, kept by ingest, import and
  delete (migration 0003). A keyset page's total (what is left after `after_seq`) is arithmetic on that
  count when the session's seqs are provably contiguous, and counted only when they are not.
- Round trips. A list page carries its total in the same statement, and a message page is read with its
  session's row in one transaction.
- Sorting. The list's index is in the list's order (owner, created_at DESC, id; migration 0006).

Ownership is part of every query (`owner = :owner`): another owner's session is not found, as before.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson
import pydantic_core
from sqlalchemy import BigInteger, Select, Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controlplane.db.models import AgentSession, Message
from controlplane.db.raw_readers import AsyncpgReader, SqliteReader

__all__ = ["SessionReads", "session_detail", "session_summary"]

log = logging.getLogger("controlplane.reads")

_S: Table = AgentSession.__table__  # type: ignore[assignment]
_M: Table = Message.__table__  # type: ignore[assignment]
_SUMMARY_NAMES = (
    "id",
    "agent_id",
    "task_id",
    "status",
    "created_at",
    "last_active",
    "message_count",
    "workspace_id",
    "machine_id",
    "user_session_id",
    "pending_approvals",
    "usage_input_tokens",
    "usage_output_tokens",
    "usage_cache_read_tokens",
    "usage_cache_creation_tokens",
    "usage_cost_usd",
    "usage_turns",
    "usage_duration_ms",
    "provider_session_id",
)
_DETAIL_NAMES = (*_SUMMARY_NAMES, "data", "prompt", "worktree_name", "last_error", "launched")
_SUMMARY = tuple(_S.c[n] for n in _SUMMARY_NAMES)
_DETAIL = tuple(_S.c[n] for n in _DETAIL_NAMES)


def _to_json(value: Any) -> bytes:
    """`value` as the response models would write it (aware datetimes in UTC end in Z)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_UTC_Z)
    except (TypeError, orjson.JSONEncodeError):
        return pydantic_core.to_json(value)


def _summary(v: Sequence[Any]) -> dict[str, Any]:
    """The list shape from values in _SUMMARY_NAMES order."""
    return {
        "id": v[0],
        "agent_id": v[1],
        "task_id": v[2],
        "status": v[3],
        "created_at": v[4],
        "last_active": v[5],
        "message_count": v[6] or 0,
        "workspace_id": v[7],
        "machine_id": v[8],
        "user_session_id": v[9],
        "pending_approvals": v[10] or 0,
        "usage": {
            "input_tokens": v[11] or 0,
            "output_tokens": v[12] or 0,
            "cache_read_tokens": v[13] or 0,
            "cache_creation_tokens": v[14] or 0,
            "cost_usd": v[15],
            "turns": v[16] or 0,
            "duration_ms": v[17] or 0,
        },
        "provider_session_id": v[18],
    }


def _detail(v: Sequence[Any]) -> dict[str, Any]:
    """The detail shape from values in _DETAIL_NAMES order."""
    out = _summary(v)
    out.update(data=dict(v[19] or {}), prompt=v[20], worktree_name=v[21], last_error=v[22], launched=bool(v[23]))
    return out


def session_summary(s: Any) -> dict[str, Any]:
    """The list shape of a session (an AgentSession or anything with its columns as attributes)."""
    return _summary([getattr(s, n) for n in _SUMMARY_NAMES])


def session_detail(s: Any) -> dict[str, Any]:
    """The detail shape of a session (an AgentSession or anything with its columns as attributes)."""
    return _detail([getattr(s, n) for n in _DETAIL_NAMES])


def _message(v: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": v[0],
        "seq": v[1],
        "role": v[2],
        "content": v[3] or {},
        "created_at": v[4],
        "metadata": v[5] or {},
        "status": v[6],
    }


# Statements built once (so SQLAlchemy's compiled cache is found without building a cache key each time).
_MESSAGE = (_M.c.id, _M.c.seq, _M.c.role, _M.c.content, _M.c.created_at, _M.c["metadata"], _M.c.status)
_LIMIT, _OFFSET = bindparam("limit", type_=BigInteger()), bindparam("offset", type_=BigInteger())
_DETAIL_Q = select(*_DETAIL).where(_S.c.id == bindparam("id"), _S.c.owner == bindparam("owner"))
_MINE = _M.c.agent_session_id == bindparam("id")
# With its first and last seq (two probes of the (session, seq) index), read in the same statement so they
# agree with the count.
_SESSION_Q = select(
    _S.c.message_count,
    _S.c.imported,
    select(func.min(_M.c.seq)).where(_MINE).scalar_subquery(),
    select(func.max(_M.c.seq)).where(_MINE).scalar_subquery(),
).where(_S.c.id == bindparam("id"), _S.c.owner == bindparam("owner"))
# Imported messages (seq NULL) come first, then the agent's by seq. A session that was never imported holds
# only seqs, so its page is found in the (session, seq) index alone, and only the page's rows are read.
_IMPORTED_PAGE_Q = (
    select(*_MESSAGE).where(_MINE).order_by(func.coalesce(_M.c.seq, 0), _M.c.pk).limit(_LIMIT).offset(_OFFSET)
)
_EVENT_PAGE_Q = (
    select(*_MESSAGE)
    .where(_M.c.pk.in_(select(_M.c.pk).where(_MINE).order_by(_M.c.seq).limit(_LIMIT).offset(_OFFSET).scalar_subquery()))
    .order_by(_M.c.seq)
)
_AFTER = _M.c.seq > bindparam("after_seq", type_=BigInteger())
_AFTER_COUNT_Q = select(func.count()).where(_MINE, _AFTER)
_AFTER_Q = select(*_MESSAGE).where(_MINE, _AFTER).order_by(_M.c.seq).limit(_LIMIT).offset(_OFFSET)
_FILTERS = ("task_id", "agent_id", "status")


@functools.cache
def _page_queries(filters: tuple[str, ...]) -> tuple[Select, Select]:
    """The list query and its count, for a set of filtered columns. The page is read in the
    (owner, created_at, id) index's order and stops at its limit; the count reads that index alone.

    The list query carries the count as its last column (an uncorrelated subquery, evaluated once), so a
    page and its total are one statement: one snapshot, and on PostgreSQL one round trip. The count alone
    is for a page with no rows."""
    where = [_S.c.owner == bindparam("owner"), *(_S.c[f] == bindparam(f) for f in filters)]
    count = select(func.count()).where(*where)
    rows = (
        select(*_SUMMARY, count.scalar_subquery())
        .where(*where)
        .order_by(_S.c.created_at.desc(), _S.c.id)
        .limit(_LIMIT)
        .offset(_OFFSET)
    )
    return rows, count


def _left_after(after_seq: int, count: int, imported: bool, first: int | None, last: int | None) -> int | None:
    """How many messages have a seq above `after_seq`, from the stored count alone, or None when only
    counting them can tell.

    A session never imported holds only seqs, each once (a unique index); when there are as many as the
    span from the first to the last, every seq in between is there, so what is left is arithmetic.
    """
    if imported:
        return None
    if first is None or last is None:
        return 0 if count == 0 else None
    if count != last - first + 1:
        return None
    return max(0, last - max(after_seq, first - 1))


def _sqlite_reader(engine: AsyncEngine) -> SqliteReader | None:
    """A synchronous reader of the engine's SQLite file (None for in-memory databases)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return SqliteReader(database)


class SessionReads:
    """Session detail, session list and message pages as JSON bytes, for one owner at a time."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = _sqlite_reader(engine) if engine.dialect.name == "sqlite" else None
        self._asyncpg = AsyncpgReader(engine.url) if engine.dialect.driver == "asyncpg" else None

    async def open(self) -> None:
        """Open the asyncpg reader's pool (on PostgreSQL)."""
        if self._asyncpg is not None:
            await self._asyncpg.open()

    async def close(self) -> None:
        """Close the raw readers (idempotent); reads go through the engine from then on."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._asyncpg is not None:
            await self._asyncpg.close()
            self._asyncpg = None

    async def _read(self, *queries: tuple[Select, dict[str, Any]]) -> list[Sequence[Sequence[Any]]]:
        """Each query's rows, read in one transaction."""
        if self._sqlite is not None:
            try:
                return list(self._sqlite.read(queries))
            except sqlite3.OperationalError as err:
                log.info("inline read failed (%s); reading through the async engine", err)
        elif self._asyncpg is not None:
            return list(await self._asyncpg.read(queries))
        async with self._engine.connect() as conn:
            return [(await conn.execute(stmt, params)).all() for stmt, params in queries]

    async def detail(self, owner: str, session_id: str) -> bytes | None:
        """GET /api/sessions/{id}'s body, or None when the owner has no such session."""
        [rows] = await self._read((_DETAIL_Q, {"id": session_id, "owner": owner}))
        return _to_json(_detail(rows[0])) if rows else None

    async def page(
        self, owner: str, *, task_id: str | None, agent_id: str | None, status: str | None, limit: int, offset: int
    ) -> bytes:
        """GET /api/sessions's body: the owner's sessions newest first, filtered, with the total."""
        values = {"task_id": task_id, "agent_id": agent_id, "status": status}
        filters = tuple(f for f in _FILTERS if values[f] is not None)
        rows_q, count_q = _page_queries(filters)
        params: dict[str, Any] = {"owner": owner, "limit": limit, "offset": offset, **{f: values[f] for f in filters}}
        [rows] = await self._read((rows_q, params))
        if rows:
            total = rows[0][-1]
        elif offset == 0:
            total = 0
        else:
            [counted] = await self._read((count_q, params))
            total = counted[0][0]
        return _to_json({"sessions": [_summary(r) for r in rows], "total": total, "limit": limit, "offset": offset})

    async def messages(
        self, owner: str, session_id: str, *, limit: int, offset: int, after_seq: int | None
    ) -> bytes | None:
        """GET /api/sessions/{id}/messages's body, or None when the owner has no such session.

        With `after_seq` the page starts in the (session, seq) index (keyset paging: the same cost at any
        depth); without it, at `offset`."""
        params: dict[str, Any] = {"id": session_id, "owner": owner, "limit": limit, "offset": offset}
        if after_seq is not None:
            params["after_seq"] = after_seq
        # The page is read with the session's row, in one transaction; it is dropped when the owner has no
        # such session. Without after_seq the page query assumes a session never imported (the usual kind).
        found, rows = await self._read((_SESSION_Q, params), (_EVENT_PAGE_Q if after_seq is None else _AFTER_Q, params))
        if not found:
            return None
        count, imported, first, last = found[0]
        if after_seq is None:
            if imported:  # read again in the imported order, the count with it (one snapshot)
                found, rows = await self._read((_SESSION_Q, params), (_IMPORTED_PAGE_Q, params))
                if not found:
                    return None
                count = found[0][0]
            total = count
        else:
            total = _left_after(after_seq, count, imported, first, last)
            if total is None:
                [counted] = await self._read((_AFTER_COUNT_Q, params))
                total = counted[0][0]
        return _to_json({"messages": [_message(r) for r in rows], "total": total, "limit": limit, "offset": offset})
