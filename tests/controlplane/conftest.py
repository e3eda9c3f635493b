"""Control-plane fixtures: every test runs against SQLite and PostgreSQL (`db_url` is parametrized),
with a real control plane served on a free port and clients holding real tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.auth import create_token
from controlplane.config import ControlPlaneConfig, from_dict
from controlplane.db.engine import make_engine, make_sessionmaker, migrate
from tests.support.controlplane_proc import running_controlplane
from tests.support.daemon_proc import daemon, daemon_factory  # noqa: F401 - fixtures
from tests.support.git_repos import git_repo, make_git_repo  # noqa: F401 - fixtures
from tests.support.postgres import PostgresCluster, postgres_cluster  # noqa: F401 - fixture


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cp.sqlite3'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name, url = cluster.create_database()
    try:
        yield url
    finally:
        cluster.drop_database(name)


@pytest.fixture
def cp_config(tmp_path: Path, db_url: str) -> ControlPlaneConfig:
    """Test defaults: short daemon deadlines and keep-alives, quick ingest reconnects."""
    return from_dict(
        {
            "server": {
                "state_dir": str(tmp_path / "cp-state"),
                "database_url": db_url,
                "max_body_bytes": 4 * 1024 * 1024,
                "daemon_deadline_seconds": 60,
                "rpc_deadline_seconds": 20,
                "sse_keepalive_seconds": 1,
                "ingest_max_backoff_seconds": 0.5,
            }
        }
    )


async def make_token(config: ControlPlaneConfig, owner: str, *, is_admin: bool = False) -> str:
    """Create a token straight in the database (what `create-token` does)."""
    engine = make_engine(config.database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as db:
            _row, plain = await create_token(db, owner, is_admin=is_admin)
            await db.commit()
        return plain
    finally:
        await engine.dispose()


@dataclass
class ControlPlane:
    """A running control plane plus an admin client and helpers to set up owners and resources."""

    url: str
    config: ControlPlaneConfig
    admin: httpx.AsyncClient
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _ctx: Any = None

    async def stop(self) -> None:
        """Shut this control plane down (lifespan shutdown); idempotent."""
        await self.aclose()
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await ctx.__aexit__(None, None, None)

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=120)
        self._clients.append(c)
        return c

    async def owner(self, name: str, *, is_admin: bool = False) -> httpx.AsyncClient:
        """A client with a new token of owner `name` (created through the admin API)."""
        r = await self.admin.post("/api/v1/tokens", json={"owner": name, "is_admin": is_admin})
        assert r.status_code == 201, r.text
        return self.client(r.json()["token"])

    async def machine(self, address: str, owner: str, **extra: Any) -> dict:
        r = await self.admin.post(
            "/api/v1/machines", json={"name": f"m-{owner}", "address": address, "owner": owner, **extra}
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def workspace(self, repository: str, owner: str, machine_id: str | None) -> dict:
        r = await self.admin.post(
            "/api/v1/workspaces",
            json={"name": f"ws-{owner}", "repository": repository, "owner": owner, "default_machine_id": machine_id},
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()
        self._clients.clear()


@pytest.fixture
async def controlplane_factory(cp_config: ControlPlaneConfig) -> AsyncIterator[Callable[..., Any]]:
    """`await start(**config_overrides)` → a running ControlPlane; all are shut down afterwards."""
    stack: list[ControlPlane] = []
    admin_token: list[str] = []

    async def start(**overrides: Any) -> ControlPlane:
        config = replace(cp_config, **overrides)
        if not admin_token:
            admin_token.append(await make_token(config, "admin", is_admin=True))
        ctx = running_controlplane(config)
        url = await ctx.__aenter__()
        admin = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {admin_token[0]}"}, timeout=120)
        cp = ControlPlane(url=url, config=config, admin=admin, _clients=[admin], _ctx=ctx)
        stack.append(cp)
        return cp

    try:
        yield start
    finally:
        while stack:
            await stack.pop().stop()


@pytest.fixture
async def cp(controlplane_factory: Callable[..., Any]) -> ControlPlane:
    """One running control plane with the test defaults."""
    return await controlplane_factory()


@pytest.fixture
async def fake_daemon() -> AsyncIterator[tuple[Any, str]]:
    """(FakeDaemon, address) served in this event loop on a temp unix socket."""
    from tests.controlplane.fake_daemon import serve_fake_daemon

    async with serve_fake_daemon() as served:
        yield served
