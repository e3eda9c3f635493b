"""Small helpers for control-plane tests: polling with a deadline and reading SSE streams."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from httpx_sse import aconnect_sse

__all__ = ["poll", "read_sse", "wait_messages"]

# One way to wait: re-exported for the control-plane tests.
from tests.support.waiting import poll


async def wait_messages(
    client: httpx.AsyncClient,
    sid: str,
    predicate: Callable[[list[dict]], bool],
    *,
    timeout: float = 60.0,
    what: str = "messages",
) -> list[dict]:
    """Poll GET /api/sessions/{sid}/messages (the agent's events: seq > 0) until predicate(messages) holds."""
    seen: list[dict] = []

    async def check() -> list[dict] | None:
        nonlocal seen
        r = await client.get(f"/api/sessions/{sid}/messages", params={"limit": 1000, "after_seq": 0})
        assert r.status_code == 200, r.text
        seen = r.json()["messages"]
        return seen if predicate(seen) else None

    try:
        return await poll(check, timeout=timeout, what=what)
    except TimeoutError as err:
        summary = [
            (
                m["seq"],
                m["role"],
                m["content"].get("type"),
                str(m["content"].get("text") or m["content"].get("message"))[:300],
            )
            for m in seen[-30:]
        ]
        raise AssertionError(f"{err}; messages so far: {summary}") from None


async def read_sse(
    client: httpx.AsyncClient,
    path: str,
    count: int,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    on_open: Callable[[], Awaitable[None]] | None = None,
    until: Callable[[list[tuple[int, dict]]], bool] | None = None,
) -> list[tuple[int, dict]]:
    """Read SSE events from `path` (with httpx-sse) until `count` arrived, or `until(events)` holds →
    [(id, data)]. `on_open` runs once the stream's answer has arrived (to trigger live events)."""
    events: list[tuple[int, dict]] = []

    async def run() -> None:
        async with aconnect_sse(client, "GET", path, headers=headers or {}) as source:
            resp = source.response
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-type"].startswith("text/event-stream")
            if on_open is not None:
                await on_open()
            async for sse in source.aiter_sse():
                if not sse.data:
                    continue  # httpx-sse dispatches a keep-alive comment as an empty event
                assert sse.event == "message", sse
                events.append((int(sse.id), sse.json()))
                if (until is not None and until(events)) or (until is None and len(events) >= count):
                    return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise AssertionError(f"SSE: got {len(events)} of {count} events within {timeout}s: {events}") from None
    return events
