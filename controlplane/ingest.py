"""Event ingest: follows each running session's StreamEvents into stored messages and fans them out to SSE.

Each followed session has one task. It asks the daemon for every event after the last stored seq,
inserts each as a message with ON CONFLICT DO NOTHING on (agent_session_id, seq), so a reconnect or a
control-plane restart never stores a gap or a duplicate, and keeps the session's status, last_seq and
last_active current. Followers stop once the session is paused, completed or failed (after a short
drain for trailing events) and are restarted by launch/resume/message and at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

from berth.daemon.v1 import daemon_pb2
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.daemons import DaemonCallError, DaemonPool, MachineTarget, message_to_dict
from controlplane.db.models import AgentSession, Machine, Message, new_id, utcnow
from controlplane.metrics import Metrics
from controlplane.sealing import Sealer

__all__ = ["Broker", "IngestManager", "message_json", "parse_time"]

log = logging.getLogger("controlplane.ingest")

# Statuses after which a follower drains briefly and stops.
_STOP_STATUSES = ("paused", "completed", "failed")
_RESUME_STATUSES = ("active", "created")


def parse_time(value: str | None) -> datetime:
    """RFC 3339 → aware datetime; now when missing or unreadable."""
    if value:
        try:
            dt = datetime.fromisoformat(value)
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        except ValueError:
            pass
    return utcnow()


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat().replace("+00:00", "Z")


def message_json(m: Message) -> dict[str, Any]:
    """A stored message as the API shows it (MessageOut)."""
    return {
        "id": m.id,
        "seq": m.seq,
        "role": m.role,
        "content": m.content or {},
        "created_at": _iso(m.created_at),
        "metadata": m.meta or {},
        "status": m.status,
    }


class Broker:
    """In-process fan-out of newly stored messages to SSE subscribers, per session."""

    RESYNC: ClassVar[dict[str, Any]] = {"resync": True}

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[asyncio.Queue]] = {}

    def subscribe(self, session_id: str) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(self.queue_size)
        self._subs.setdefault(session_id, set()).add(q)
        return q

    def unsubscribe(self, session_id: str, q: asyncio.Queue) -> None:
        subs = self._subs.get(session_id)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self._subs[session_id]

    def publish(self, session_id: str, item: dict[str, Any]) -> None:
        for q in list(self._subs.get(session_id, ())):
            try:
                q.put_nowait(item)
            except asyncio.QueueFull:
                # A slow reader: drop what it has queued; it reloads from the database.
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(self.RESYNC)


def _insert_for(db: AsyncSession):
    return pg_insert if db.bind.dialect.name == "postgresql" else sqlite_insert


class IngestManager:
    """Owns one follower task per followed session."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pool: DaemonPool,
        broker: Broker,
        metrics: Metrics | None = None,
        sealer: Sealer | None = None,
        *,
        max_backoff: float = 5.0,
        drain_seconds: float = 2.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.pool = pool
        self.broker = broker
        self.metrics = metrics
        self.sealer = sealer
        self.max_backoff = max_backoff
        self.drain_seconds = drain_seconds
        self._tasks: dict[str, asyncio.Task] = {}
        self._closed = False

    async def start(self) -> None:
        """Resume following every launched session that is still running."""
        async with self.sessionmaker() as db:
            ids = (
                await db.execute(
                    select(AgentSession.id).where(
                        AgentSession.launched.is_(True), AgentSession.status.in_(_RESUME_STATUSES)
                    )
                )
            ).scalars().all()
        for sid in ids:
            self.ensure(sid)

    def following(self, session_id: str) -> bool:
        t = self._tasks.get(session_id)
        return t is not None and not t.done()

    def ensure(self, session_id: str) -> None:
        """Start following `session_id` unless already doing so."""
        if self._closed or self.following(session_id):
            return
        task = asyncio.get_running_loop().create_task(self._follow(session_id), name=f"ingest:{session_id}")
        self._tasks[session_id] = task
        task.add_done_callback(lambda t, sid=session_id: self._done(sid, t))

    def _done(self, session_id: str, task: asyncio.Task) -> None:
        if self._tasks.get(session_id) is task:
            del self._tasks[session_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("follower of %s crashed", session_id, exc_info=task.exception())

    async def stop(self, session_id: str) -> None:
        task = self._tasks.pop(session_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Cancel every follower (idempotent)."""
        self._closed = True
        tasks, self._tasks = list(self._tasks.values()), {}
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _load(self, session_id: str) -> tuple[AgentSession, Machine | None] | None:
        async with self.sessionmaker() as db:
            s = await db.get(AgentSession, session_id)
            if s is None:
                return None
            m = await db.get(Machine, s.machine_id) if s.machine_id else None
            return s, m

    async def _follow(self, session_id: str) -> None:
        backoff = 0.2
        while True:
            loaded = await self._load(session_id)
            if loaded is None:
                return
            s, machine = loaded
            if machine is None or not s.launched:
                return
            token = self.sealer.open(machine.token) if self.sealer else machine.token
            client = self.pool.client(MachineTarget(machine.id, machine.address, machine.tls_ca, token))
            try:
                async with asyncio.timeout(None) as tm:
                    async for event in client.stream_events(session_id, s.last_seq):
                        if not await self._store(session_id, event):
                            return
                        backoff = 0.2
                        if event.status in _STOP_STATUSES:
                            tm.reschedule(asyncio.get_running_loop().time() + self.drain_seconds)
                        elif event.status:
                            tm.reschedule(None)
            except TimeoutError:
                pass
            except DaemonCallError as err:
                if err.code == "NOT_FOUND":
                    await self._mark_failed(session_id, f"daemon no longer knows this session: {err.message}")
                    return
                log.warning("following %s: %s; reconnecting in %.1fs", session_id, err.message, backoff)
            loaded = await self._load(session_id)
            if loaded is None or loaded[0].status in _STOP_STATUSES:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _mark_failed(self, session_id: str, error: str) -> None:
        async with self.sessionmaker() as db, db.begin():
            await db.execute(
                update(AgentSession)
                .where(AgentSession.id == session_id, AgentSession.status.in_(_RESUME_STATUSES))
                .values(status="failed", last_error=error)
            )

    async def _store(self, session_id: str, event: daemon_pb2.Event) -> bool:
        """Store one event idempotently; False when the session is gone."""
        content = message_to_dict(event.content)
        meta = message_to_dict(event.metadata)
        row = {
            "id": new_id("msg"),
            "agent_session_id": session_id,
            "seq": event.seq,
            "role": event.role or "system",
            "content": content,
            "metadata": meta,
            "status": event.status or None,
            "created_at": parse_time(event.created_at),
        }
        try:
            async with self.sessionmaker() as db, db.begin():
                ins = _insert_for(db)(Message.__table__).values(**row).on_conflict_do_nothing(
                    index_elements=["agent_session_id", "seq"]
                )
                inserted = (await db.execute(ins)).rowcount == 1
                if not inserted:
                    return True
                values: dict[str, Any] = {"last_seq": event.seq, "last_active": row["created_at"]}
                if event.status:
                    values["status"] = event.status
                    if event.status == "failed":
                        values["last_error"] = content.get("message") or content.get("text") or "agent failed"
                await db.execute(
                    update(AgentSession)
                    .where(AgentSession.id == session_id, AgentSession.last_seq < event.seq)
                    .values(**values)
                )
        except IntegrityError:
            return False  # the session row was deleted meanwhile
        if self.metrics:
            self.metrics.events_ingested.inc()
        out = dict(row)
        out["created_at"] = _iso(row["created_at"])
        del out["agent_session_id"]
        self.broker.publish(session_id, out)
        return True
