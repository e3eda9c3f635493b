"""In-process fan-out of newly stored messages to each session's SSE subscribers.

Each subscriber has its own bounded queue. All the subscribers of a session get the same Published object,
so the stream's wire form of a message is encoded once, by the first subscriber that sends it, however
many are listening. A subscriber that falls a queue behind gets RESYNC instead (it reloads from the
database); at shutdown every subscriber gets STOP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

__all__ = ["RESYNC", "STOP", "Broker", "Delivery", "Published"]


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


RESYNC: Final = _Signal("RESYNC")  # the subscriber fell behind: read what is missing from the database
STOP: Final = _Signal("STOP")  # the server is stopping: end the stream


class Published:
    """One stored message as subscribers receive it: its API form and, once asked for, its wire form."""

    __slots__ = ("_encoded", "item", "seq")

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.seq: int = item["seq"]
        self._encoded: str | None = None

    def encoded(self, encode: Callable[[dict[str, Any]], str]) -> str:
        """`encode(item)`, computed once for every subscriber (they all pass the same encoder)."""
        if self._encoded is None:
            self._encoded = encode(self.item)
        return self._encoded


Delivery = Published | _Signal


class Broker:
    """Subscriptions per session; publish() never blocks and never fails."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[asyncio.Queue[Delivery]]] = {}
        self._closed = False

    def subscribe(self, session_id: str) -> asyncio.Queue[Delivery]:
        q: asyncio.Queue[Delivery] = asyncio.Queue(self.queue_size)
        if self._closed:
            q.put_nowait(STOP)
        self._subs.setdefault(session_id, set()).add(q)
        return q

    def unsubscribe(self, session_id: str, q: asyncio.Queue[Delivery]) -> None:
        subs = self._subs.get(session_id)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self._subs[session_id]

    def publish(self, session_id: str, item: dict[str, Any]) -> None:
        subs = self._subs.get(session_id)
        if not subs:
            return
        published = Published(item)
        for q in list(subs):
            try:
                q.put_nowait(published)
            except asyncio.QueueFull:
                _replace(q, RESYNC)  # a slow reader: drop what it has queued; it reloads from the database

    def close(self) -> None:
        """Tell every subscriber, present and future, to end its stream (idempotent)."""
        self._closed = True
        for subs in list(self._subs.values()):
            for q in list(subs):
                _replace(q, STOP)


def _replace(q: asyncio.Queue[Delivery], signal: _Signal) -> None:
    while not q.empty():
        q.get_nowait()
    q.put_nowait(signal)
