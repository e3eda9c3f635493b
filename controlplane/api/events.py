"""GET /api/sessions/{id}/events — the session's messages as Server-Sent Events, live and resumable.

Each event is `id: <seq>`, `event: message`, `data: <MessageOut JSON>`. A client resumes with the
`Last-Event-ID` header (or `?after_seq=`): it gets every stored event after that seq, then live ones,
with no gap and no duplicate. Comments (`: keep-alive`) are sent while nothing happens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from controlplane.api.common import field_error, owned_agent_session
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.broker import RESYNC, STOP, Delivery, Published
from controlplane.db.models import Message
from controlplane.ingest import message_json
from controlplane.services import get_services

__all__ = ["router"]

router = APIRouter(tags=["events"], route_class=StrictJSONRoute)
_PAGE = 500


def _frame(item: dict) -> str:
    return f"id: {item['seq']}\nevent: message\ndata: {json.dumps(item, separators=(',', ':'))}\n\n"


@router.get(
    "/api/sessions/{session_id}/events",
    summary="Stream a session's events (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_events(
    session_id: str,
    request: Request,
    p: Annotated[Principal, Depends(current_principal)],
    after_seq: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    state = get_services(request)
    async with state.sessionmaker() as db:
        await owned_agent_session(db, p, session_id)
    start = after_seq or 0
    if last_event_id:
        try:
            seq = int(last_event_id)
        except ValueError:
            raise field_error("last-event-id", "must be an integer seq", where="header") from None
        if not 0 <= seq < 2**63:
            raise field_error("last-event-id", "must be a seq from 0 to 2**63-1", where="header")
        start = max(start, seq)

    async def backlog(after: int) -> AsyncIterator[dict]:
        while True:
            async with state.sessionmaker() as db:
                rows = (
                    (
                        await db.execute(
                            select(Message)
                            .where(Message.agent_session_id == session_id, Message.seq > after)
                            .order_by(Message.seq)
                            .limit(_PAGE)
                        )
                    )
                    .scalars()
                    .all()
                )
            for m in rows:
                yield message_json(m)
            if len(rows) < _PAGE:
                return
            after = rows[-1].seq or after

    keepalive = state.config.sse_keepalive_seconds

    async def next_delivery(queue: asyncio.Queue[Delivery]) -> Delivery | None:
        """The next delivery; None after a keep-alive interval with none."""
        if not queue.empty():
            return queue.get_nowait()
        try:
            async with asyncio.timeout(keepalive):
                return await queue.get()
        except TimeoutError:
            return None

    async def gen() -> AsyncIterator[str]:
        last = start
        # Subscribed when the stream starts (a client gone before that leaves nothing behind), and before
        # the backlog is read, so that nothing stored in between is missed.
        queue = state.broker.subscribe(session_id)
        state.metrics.sse_clients.inc()
        try:
            yield ": connected\n\n"
            async for item in backlog(last):
                last = item["seq"]
                yield _frame(item)
            while True:
                delivery = await next_delivery(queue)
                if delivery is None:
                    yield ": keep-alive\n\n"
                    continue
                # What else is queued goes out in the same chunk (one write for a burst).
                chunks: list[str] = []
                while delivery is not None:
                    if delivery is STOP:
                        if chunks:
                            yield "".join(chunks)
                        return  # the server is shutting down: end the stream so it can exit promptly
                    if isinstance(delivery, Published) and delivery.seq == last + 1:
                        last = delivery.seq
                        chunks.append(delivery.encoded(_frame))
                    elif delivery is RESYNC or (isinstance(delivery, Published) and delivery.seq > last + 1):
                        # Fell behind or raced the backlog: read what is missing from the database.
                        if chunks:
                            yield "".join(chunks)
                            chunks = []
                        async for row in backlog(last):
                            last = row["seq"]
                            yield _frame(row)
                    delivery = queue.get_nowait() if not queue.empty() else None
                if chunks:
                    yield "".join(chunks)
        finally:
            state.broker.unsubscribe(session_id, queue)
            state.metrics.sse_clients.dec()

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
