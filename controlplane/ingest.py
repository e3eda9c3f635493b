"""Event ingest: follows each running session's StreamEvents into stored messages and fans them out to SSE.

Each followed session has one follower task reading the daemon's stream (every event after the last
stored seq). Followers hand events to one writer task, which stores everything queued so far in one
transaction (insert with ON CONFLICT DO NOTHING on (agent_session_id, seq), so a reconnect or a
control-plane restart never stores a gap or a duplicate), updates each session's status, last_seq and
last_active once per batch, commits, and only then publishes the newly stored messages to SSE
subscribers (an SSE id is a stored seq, so a client resuming from the database sees no gap).
One writer means one SQLite write transaction at a time (no lock contention) and few commits under load.
The transaction itself runs straight on the database driver (controlplane/db/event_writers.py).
Followers stop once the session is paused, completed or failed (after a short drain for trailing events)
and are restarted by launch/resume/message and at start-up.

Size: the followers and the one writer share the batching state and the publish-after-commit rule;
kept together so that rule is visible in one file.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from berth.daemon.v1 import daemon_pb2
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.broker import Broker
from controlplane.daemons import DaemonCallError, DaemonClient, message_to_dict
from controlplane.db.event_writers import EngineEventWriter, EventWriter, SessionGone
from controlplane.db.models import AgentSession, Machine, Message, new_id, utcnow
from controlplane.metrics import Metrics
from controlplane.statuses import ENDED, RUNNING

__all__ = ["IngestManager", "message_json", "parse_time"]

log = logging.getLogger("controlplane.ingest")

# Statuses after which a follower drains briefly and stops.
_STOP_STATUSES = ("paused", *ENDED)  # the agent is gone: stop following


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


# Events taken from the queue per transaction.
_MAX_BATCH = 2000


class _Flush:
    """A queue marker: its future resolves once everything queued before it is stored."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class IngestManager:
    """Owns one follower task per followed session and the writer task that stores their events."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client_for: Callable[[Machine], DaemonClient],
        broker: Broker,
        metrics: Metrics | None = None,
        *,
        max_backoff: float = 5.0,
        drain_seconds: float = 2.0,
        queue_size: int = 10_000,
        events: EventWriter | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.events = events if events is not None else EngineEventWriter(sessionmaker)
        self.client_for = client_for
        self.broker = broker
        self.metrics = metrics
        self.max_backoff = max_backoff
        self.drain_seconds = drain_seconds
        self._tasks: dict[str, asyncio.Task] = {}
        self._closed = False
        self._queue: asyncio.Queue[tuple[str, daemon_pb2.Event] | _Flush] = asyncio.Queue(queue_size)
        self._writer: asyncio.Task | None = None

    async def start(self) -> None:
        """Resume following every launched session that is still running."""
        async with self.sessionmaker() as db:
            ids = (
                (
                    await db.execute(
                        select(AgentSession.id).where(AgentSession.launched.is_(True), AgentSession.status.in_(RUNNING))
                    )
                )
                .scalars()
                .all()
            )
        for sid in ids:
            self.ensure(sid)

    def following(self, session_id: str) -> bool:
        t = self._tasks.get(session_id)
        return t is not None and not t.done()

    def ensure(self, session_id: str) -> None:
        """Start following `session_id` unless already doing so."""
        if self._closed or self.following(session_id):
            return
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_loop(), name="ingest:writer")
            self._writer.add_done_callback(self._writer_done)
        task = loop.create_task(self._follow(session_id), name=f"ingest:{session_id}")
        self._tasks[session_id] = task
        task.add_done_callback(functools.partial(self._done, session_id))

    def _done(self, session_id: str, task: asyncio.Task) -> None:
        if self._tasks.get(session_id) is task:
            del self._tasks[session_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("follower of %s crashed", session_id, exc_info=task.exception())

    def _writer_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ingest writer crashed", exc_info=task.exception())

    async def flush(self) -> None:
        """Wait until every event queued so far is stored (and published)."""
        if self._writer is None or self._writer.done():
            return
        marker = _Flush()
        await self._queue.put(marker)
        writer = self._writer
        await asyncio.wait({marker.future, writer}, return_when=asyncio.FIRST_COMPLETED)

    async def stop(self, session_id: str) -> None:
        """Stop following `session_id`; events it already received are stored first."""
        task = self._tasks.pop(session_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.flush()

    async def close(self) -> None:
        """Cancel every follower and the writer, then close the event writer (idempotent); unstored events
        are re-read at the next start."""
        self._closed = True
        tasks, self._tasks = list(self._tasks.values()), {}
        if self._writer is not None:
            tasks.append(self._writer)
            self._writer = None
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.events.close()

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
            try:
                client = self.client_for(machine)  # DaemonCallError when a dial-out machine is offline
                async with asyncio.timeout(None) as tm:
                    async for event in client.stream_events(session_id, s.last_seq):
                        await self._queue.put((session_id, event))
                        backoff = 0.2
                        if event.status in _STOP_STATUSES:
                            tm.reschedule(asyncio.get_running_loop().time() + self.drain_seconds)
                        elif event.status:
                            tm.reschedule(None)
            except TimeoutError:
                pass
            except DaemonCallError as err:
                if err.code == "NOT_FOUND":
                    await self.flush()
                    await self._mark_failed(session_id, f"daemon no longer knows this session: {err.message}")
                    return
                log.warning("following %s: %s; reconnecting in %.1fs", session_id, err.message, backoff)
            # The stored status and last_seq decide what comes next: store what was received first.
            await self.flush()
            loaded = await self._load(session_id)
            if loaded is None or loaded[0].status in _STOP_STATUSES:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _mark_failed(self, session_id: str, error: str) -> None:
        async with self.sessionmaker() as db, db.begin():
            await db.execute(
                update(AgentSession)
                .where(AgentSession.id == session_id, AgentSession.status.in_(RUNNING))
                .values(status="failed", last_error=error)
            )

    async def _write_loop(self) -> None:
        """Take everything queued, store it in one transaction, publish, resolve flush markers; repeat."""
        while True:
            items = [await self._queue.get()]
            while len(items) < _MAX_BATCH and not self._queue.empty():
                items.append(self._queue.get_nowait())
            events = [it for it in items if not isinstance(it, _Flush)]
            if events:
                try:
                    await self._write(events)
                except Exception:
                    # Not stored: restart these sessions' followers, which re-read from the stored last_seq.
                    log.exception("storing %d events failed; following their sessions again", len(events))
                    for sid in dict.fromkeys(sid for sid, _ in events):
                        self._restart(sid)
            for it in items:
                if isinstance(it, _Flush) and not it.future.done():
                    it.future.set_result(None)

    async def _write(self, events: list[tuple[str, daemon_pb2.Event]]) -> None:
        rows = [_row(sid, ev) for sid, ev in events]
        for attempt in range(3):
            try:
                stored = await self.events.store(rows)
            except SessionGone:
                # A session was deleted meanwhile: store each session's events on their own.
                stored = []
                for sid in dict.fromkeys(r["agent_session_id"] for r in rows):
                    mine = [r for r in rows if r["agent_session_id"] == sid]
                    try:
                        stored += await self.events.store(mine)
                    except SessionGone:
                        self._forget(sid)
                break
            except Exception:
                if attempt == 2:
                    raise
                log.warning("storing %d events failed; retrying", len(rows), exc_info=True)
                await asyncio.sleep(0.1 * (attempt + 1))
            else:
                break
        if self.metrics and stored:
            self.metrics.events_ingested.inc(len(stored))
        for row in stored:
            out = dict(row)
            sid = out.pop("agent_session_id")
            out["created_at"] = _iso(row["created_at"])
            self.broker.publish(sid, out)

    def _forget(self, session_id: str) -> None:
        task = self._tasks.pop(session_id, None)
        if task is not None:
            task.cancel()

    def _restart(self, session_id: str) -> None:
        self._forget(session_id)
        if not self._closed:
            self.ensure(session_id)


def _row(session_id: str, event: daemon_pb2.Event) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "agent_session_id": session_id,
        "seq": event.seq,
        "role": event.role or "system",
        "content": message_to_dict(event.content),
        "metadata": message_to_dict(event.metadata),
        "status": event.status or None,
        "created_at": parse_time(event.created_at),
    }
