"""The PostgreSQL raw reader's own connections (controlplane/db/raw_readers.py), on a real server: at most
`max_size` connections however many reads wait, a connection the server killed is dropped and replaced,
a caller that gives up while waiting takes no connection with it, and close() closes them all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import Integer, func, literal_column, select, text
from sqlalchemy.engine import make_url

from controlplane.db.raw_readers import AsyncpgReader
from tests.support.postgres import PostgresCluster
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(60)

# A read that holds its connection for 0.3 s (pg_sleep returns void, so it answers a 1 after it).
_SLOW = select(literal_column("1", Integer).label("one")).where(text("pg_sleep(0.3) IS NOT NULL"))
_BACKEND = select(func.pg_backend_pid(type_=Integer()))


@pytest.fixture
async def url(postgres_cluster: PostgresCluster) -> AsyncIterator[str]:
    name, url = postgres_cluster.create_database()
    try:
        yield url
    finally:
        postgres_cluster.drop_database(name)


async def _sessions(url: str) -> int:
    """Connections to the database other than the one asking."""
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


async def _sleeping(url: str) -> int:
    """Reads of _SLOW running on the server now."""
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
            " AND query LIKE '%pg_sleep(0.3)%' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


async def test_reads_beyond_max_size_wait_for_a_connection_and_all_complete(url: str) -> None:
    reader = AsyncpgReader(make_url(url), max_size=2)
    await reader.open()
    try:
        pids = await asyncio.gather(*(reader.read([(_BACKEND, {})]) for _ in range(10)))
        assert len({p[0][0][0] for p in pids}) <= 2
        slow = [asyncio.create_task(reader.read([(_SLOW, {})])) for _ in range(5)]

        async def two_running() -> bool:
            return await _sleeping(url) == 2

        await poll(two_running, timeout=10, what="two reads running")
        assert await _sessions(url) == 2  # the other three wait: no third connection
        assert [r[0][0][0] for r in await asyncio.gather(*slow)] == [1] * 5
    finally:
        await reader.close()
    assert await _sessions(url) == 0


async def test_a_connection_the_server_killed_is_dropped_and_the_next_read_opens_another(url: str) -> None:
    reader = AsyncpgReader(make_url(url), max_size=1)
    await reader.open()
    try:
        [[(first,)]] = await reader.read([(_BACKEND, {})])
        admin = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        # How asyncpg reports the dead connection depends on when it notices.
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
            await reader.read([(_BACKEND, {})])
        [[(second,)]] = await reader.read([(_BACKEND, {})])
        assert second != first
    finally:
        await reader.close()


async def test_a_caller_that_gives_up_waiting_takes_no_connection_with_it(url: str) -> None:
    reader = AsyncpgReader(make_url(url), max_size=1)
    await reader.open()
    try:
        busy = asyncio.create_task(reader.read([(_SLOW, {})]))
        await poll(lambda: _sleeping(url), timeout=10, what="the slow read to hold the connection")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read([(_BACKEND, {})]), 0.05)
        await busy
        # The one connection is free again: a read gets it at once.
        [[(pid,)]] = await asyncio.wait_for(reader.read([(_BACKEND, {})]), 5)
        assert pid
        assert await _sessions(url) == 1
    finally:
        await reader.close()
    assert await _sessions(url) == 0
    with pytest.raises(RuntimeError, match="not open"):
        await reader.read([(_BACKEND, {})])
