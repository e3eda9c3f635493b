"""The control plane's services in one typed object: configuration, metrics, the database (and its hot
reads), the daemon client pool and the event ingest. Opened and closed with the app (an async context manager), and
refusing use before it is opened or after it is closed."""

from __future__ import annotations

import enum
from types import TracebackType
from typing import Self

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from controlplane.auth import TokenCache
from controlplane.broker import Broker
from controlplane.config import ControlPlaneConfig
from controlplane.daemons import DaemonCallError, DaemonClient, DaemonPool, MachineTarget
from controlplane.db.engine import make_engine, make_sessionmaker, migrate
from controlplane.db.event_writers import event_writer_for
from controlplane.db.models import Machine
from controlplane.dial_out import DialOut
from controlplane.ingest import IngestManager
from controlplane.metrics import Metrics
from controlplane.reads import SessionReads
from controlplane.sealing import Sealer, load_sealer

__all__ = ["Services", "get_services"]


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class Services:
    """What every request handler and the launch service use."""

    sealer: Sealer
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    pool: DaemonPool
    broker: Broker
    ingest: IngestManager
    reads: SessionReads
    dial_out: DialOut | None

    def __init__(self, config: ControlPlaneConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.token_cache = TokenCache()
        self.broker = Broker()
        self._state = _State.UNOPENED

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise RuntimeError(f"services are {self._state.value}; they open once")
        config = self.config
        self.sealer = load_sealer(config.secret_key_path)
        self.engine = make_engine(config.database_url)
        await migrate(self.engine)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.reads = SessionReads(self.engine)
        await self.reads.open()
        self.pool = DaemonPool(rpc_deadline=config.rpc_deadline_seconds, metrics=self.metrics)
        events = event_writer_for(self.engine, self.sessionmaker)
        await events.open()
        self.ingest = IngestManager(
            self.sessionmaker,
            self.client_for,
            self.broker,
            self.metrics,
            max_backoff=config.ingest_max_backoff_seconds,
            events=events,
        )
        self.dial_out = DialOut(config.tunnel, self.sessionmaker) if config.tunnel is not None else None
        self._state = _State.OPEN
        if self.dial_out is not None:
            await self.dial_out.start()
        await self.ingest.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the ingest, close the daemon channels and the engine. Idempotent."""
        if self._state is not _State.OPEN:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED
        await self.ingest.close()
        if self.dial_out is not None:
            await self.dial_out.stop()
        await self.pool.close()
        await self.reads.close()
        await self.engine.dispose()

    def stop_streams(self) -> None:
        """End every open SSE stream, and any opened from now on: the server is stopping."""
        self.broker.close()

    def client_for(self, machine: Machine) -> DaemonClient:
        """The daemon client of `machine`: over its tunnel when it dials out (DaemonCallError 503 when that
        is not open), else over a channel to its address (its token opened from the sealed column)."""
        if machine.dial_out:
            dial_out = self.dial_out
            if dial_out is None:
                raise DaemonCallError(
                    503,
                    f"machine {machine.id} dials out, but this control plane has no [tunnel] listener",
                    code="UNAVAILABLE",
                    method="-",
                )
            if not dial_out.online(machine.id):
                since = machine.last_seen.isoformat() if machine.last_seen else "it was created (never connected)"
                raise DaemonCallError(
                    503, f"machine {machine.id} is offline since {since}", code="UNAVAILABLE", method="-"
                )
            target = MachineTarget(machine.id, "tunnel")
            return self.pool.client(target, channel=lambda: dial_out.channel(machine.id))
        token = self.sealer.open(machine.token)
        return self.pool.client(MachineTarget(machine.id, machine.address, machine.tls_ca, token))


def get_services(request: Request) -> Services:
    """The app's Services (a FastAPI dependency)."""
    return request.app.state.services
