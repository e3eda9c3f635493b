"""Readers that run SQLAlchemy Core selects straight on the database driver. Each statement is compiled once,
and results are converted as the columns' own types convert them.

They serve the reads web apps poll (controlplane/reads.py). There, SQLAlchemy's engine costs more than the
database's own work on a page of rows:

- SqliteReader runs on the caller's thread, through a synchronous read-only sqlite3 connection.
  aiosqlite sends every call to its worker thread, and under load each trip waits for the GIL. Its
  datetimes come back in their JSON form (ISO 8601 UTC strings ending in Z, as pydantic writes them):
  parsing each one only to print it again was a tenth of a session list's time.
- AsyncpgReader uses an asyncpg pool of its own, and a read is one round trip. The engine's pool pings
  each connection it hands out and rolls back each one it gets back, which makes three round trips.
"""

from __future__ import annotations

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


async def _nothing_to_reset(_conn: Any) -> None:
    return None


class AsyncpgReader:
    """Core selects on an asyncpg pool of its own (`await open()` first)."""

    def __init__(self, url: URL, *, max_size: int = 4) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._max_size = max_size
        self._pool: Any = None
        self._statements = _Statements(postgresql.asyncpg.dialect())

    async def open(self) -> None:
        import asyncpg

        # Only SELECTs run here, so a connection has no session state to reset when it goes back to the pool:
        # without this, asyncpg's default reset costs one more round trip per read.
        self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._max_size, reset=_nothing_to_reset)

    async def read(self, queries: Queries) -> list[list[Sequence[Any]]]:
        """Each query's rows; several queries are read in one read-only transaction, from one snapshot."""
        if self._pool is None:
            raise RuntimeError("the reader is not open")
        compiled = [(self._statements.get(stmt), params) for stmt, params in queries]
        async with self._pool.acquire() as conn:
            if len(compiled) == 1:
                c, params = compiled[0]
                return [c.convert(await conn.fetch(c.sql, *c.values(params)))]
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [c.convert(await conn.fetch(c.sql, *c.values(params))) for c, params in compiled]

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
