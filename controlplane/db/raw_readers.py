"""Readers that run SQLAlchemy Core selects straight on the database driver. Each statement is compiled once,
and results are converted as the columns' own types convert them.

They serve the reads web apps poll (controlplane/reads.py). There, SQLAlchemy's engine costs more than the
database's own work on a page of rows:

- SqliteReader runs on the caller's thread, through a synchronous read-only sqlite3 connection.
  aiosqlite sends every call to its worker thread, and under load each trip waits for the GIL. Its
  datetimes come back in their JSON form (ISO 8601 UTC strings ending in Z, as pydantic writes them):
  parsing each one only to print it again was a tenth of a session list's time.
- AsyncpgReader uses asyncpg connections of its own, and a read is one round trip. The engine's pool pings
  each connection it hands out and rolls back each one it gets back, which makes three round trips; and
  asyncpg's own Pool costs more CPU per read than the read (`_Connections`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, Select, String, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["AsyncpgReader", "Queries", "SqliteReader"]

Queries = Sequence[tuple[Select, dict[str, Any]]]
_Convert = Callable[[Any], Any]


def _sqlite_utc(value: str | None) -> datetime | None:
    # SQLAlchemy stores SQLite datetimes as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC (models.UTCDateTime).
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _sqlite_json_time(value: str | None) -> str | datetime | None:
    """A stored SQLite datetime in its JSON form, as pydantic writes an aware UTC datetime
    ("2026-12-03T11:50:00.120000Z", no fraction when it is 0), without parsing it."""
    if value is None:
        return None
    if len(value) == 26 and value[10] == " " and value[19] == ".":
        fraction = "" if value.endswith("000000") else value[19:]
        return f"{value[:10]}T{value[11:19]}{fraction}Z"
    return _sqlite_utc(value)  # any other spelling: parsed


def _pg_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _converter(type_: TypeEngine, dialect: str) -> _Convert | None:
    """How a column of `type_` comes back from the driver, or TypeError for a type these readers do not know."""
    impl = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if isinstance(impl, DateTime):
        return _sqlite_json_time if dialect == "sqlite" else _pg_utc
    if isinstance(impl, JSON):
        return _json
    if isinstance(impl, Boolean):
        return _bool if dialect == "sqlite" else None
    if isinstance(impl, (Integer, Float, String, Text)):
        return None
    raise TypeError(f"a raw reader cannot convert a {type_!r} column")


class _Compiled:
    def __init__(self, stmt: Select, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        # Values the statement carries itself (e.g. the 0 of coalesce(seq, 0)), for names not passed.
        self.defaults = {n: b.value for n, b in compiled.binds.items() if not b.required}
        for name in self.names:
            bind_type = compiled.binds[name].type
            impl = bind_type.impl_instance if isinstance(bind_type, TypeDecorator) else bind_type
            if not isinstance(impl, (Integer, String, Text)):
                raise TypeError(f"parameter {name!r} of type {bind_type!r} would need converting")
        converters = [_converter(c.type, dialect.name) for c in stmt.selected_columns]
        self.converters = tuple((i, f) for i, f in enumerate(converters) if f is not None)

    def values(self, params: dict[str, Any]) -> list[Any]:
        return [params[n] if n in params else self.defaults[n] for n in self.names]

    def convert(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        if not self.converters:
            return list(rows)
        out: list[Sequence[Any]] = []
        for row in rows:
            values = list(row)
            for i, f in self.converters:
                values[i] = f(values[i])
            out.append(values)
        return out


class _Statements:
    """Compiled statements by the statement's identity (the statement is kept, so its id is never reused)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._by_id: dict[int, tuple[Select, _Compiled]] = {}

    def get(self, stmt: Select) -> _Compiled:
        hit = self._by_id.get(id(stmt))
        if hit is None or hit[0] is not stmt:
            hit = self._by_id[id(stmt)] = (stmt, _Compiled(stmt, self._dialect))
        return hit[1]


class SqliteReader:
    """Core selects on one read-only sqlite3 connection to `path`, on the caller's thread (use from one thread)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 100) -> None:
        self._conn: sqlite3.Connection | None = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA query_only=ON")
        # Never hold the caller's thread for long: a busy file raises, and the caller reads another way.
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._statements = _Statements(sqlite.dialect(paramstyle="qmark"))

    def read(self, queries: Queries) -> list[list[Sequence[Any]]]:
        """Each query's rows, all read in one transaction; sqlite3.OperationalError when the file is busy."""
        if self._conn is None:
            raise RuntimeError("the reader is closed")
        out = []
        self._conn.execute("BEGIN")
        try:
            for stmt, params in queries:
                c = self._statements.get(stmt)
                out.append(c.convert(self._conn.execute(c.sql, c.values(params)).fetchall()))
        finally:
            self._conn.execute("COMMIT")
        return out

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Connections:
    """Up to `max_size` asyncpg connections, each lent to one read at a time.

    asyncpg's Pool spends about 60 µs of CPU on each acquire and release (its holders, timeouts and a
    shielded release): more than a one-row read on a loopback server costs (about 50 µs). These reads
    need none of it: they leave no session state, and a connection that saw any error is dropped.
    """

    def __init__(self, dsn: str, max_size: int) -> None:
        self._dsn, self._max_size = dsn, max_size
        self._idle: list[Any] = []
        self._opened = 0  # idle + lent + being opened
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._closed = False

    async def acquire(self) -> Any:
        while True:
            if self._closed:
                raise RuntimeError("the reader is closed")
            if self._idle:
                return self._idle.pop()
            if self._opened < self._max_size:
                import asyncpg

                self._opened += 1
                try:
                    return await asyncpg.connect(self._dsn)
                except BaseException:
                    self._opened -= 1
                    self._wake(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Handed a connection (or room for one) just as the caller gave up: pass it on.
                    handed = waiter.result()
                    if handed is None:
                        self._wake(None)
                    else:
                        self.release(handed, broken=False)
                raise
            if conn is not None:
                return conn
            # None: a connection was dropped, so there is room to open one.

    def release(self, conn: Any, *, broken: bool) -> None:
        if broken or self._closed or conn.is_closed():
            self._opened -= 1
            conn.terminate()
            self._wake(None)
        elif not self._wake(conn):
            self._idle.append(conn)

    def _wake(self, conn: Any) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        for conn in idle:
            await conn.close()
        self._wake(None)


class AsyncpgReader:
    """Core selects on asyncpg connections of its own (`await open()` first)."""

    def __init__(self, url: URL, *, max_size: int = 4) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._max_size = max_size
        self._connections: _Connections | None = None
        self._statements = _Statements(postgresql.asyncpg.dialect())

    async def open(self) -> None:
        """Open the first connection (so a wrong URL fails here)."""
        connections = _Connections(self._dsn, self._max_size)
        connections.release(await connections.acquire(), broken=False)
        self._connections = connections

    async def read(self, queries: Queries) -> list[list[Sequence[Any]]]:
        """Each query's rows; several queries are read in one read-only transaction, from one snapshot."""
        connections = self._connections
        if connections is None:
            raise RuntimeError("the reader is not open")
        compiled = [(self._statements.get(stmt), params) for stmt, params in queries]
        conn = await connections.acquire()
        broken = True
        try:
            if len(compiled) == 1:
                c, params = compiled[0]
                out = [c.convert(await conn.fetch(c.sql, *c.values(params)))]
            else:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    out = [c.convert(await conn.fetch(c.sql, *c.values(params))) for c, params in compiled]
            broken = False
            return out
        finally:
            connections.release(conn, broken=broken)

    async def close(self) -> None:
        """Close the connections (idempotent); one lent to a read is closed when the read ends."""
        connections, self._connections = self._connections, None
        if connections is not None:
            await connections.close()
