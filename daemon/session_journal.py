"""A session's journal: its events and status changes as the store numbers and keeps them.

Every event is cut to what the contract can carry (daemon/carriable.py) before it is stored; the store
assigns its seq in the same transaction, so what a reader sees is what was kept.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from daemon.carriable import make_carriable
from daemon.store import SessionRecord, StateStore, StoredEvent

__all__ = ["SessionJournal"]

log = logging.getLogger("berth.daemon.supervisor")


class SessionJournal:
    """Writes sessions' events: agent output, user messages, status changes (`store()`: the open store)."""

    def __init__(self, store: Callable[[], StateStore]) -> None:
        self._store = store

    def event(
        self,
        sid: str,
        role: str,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        status: str = "",
        pending_message_id: str | None = None,
    ) -> StoredEvent:
        """Store one event of session `sid` (with `status`, also the session's new status)."""
        content, metadata = make_carriable(content, metadata or {})
        return self._store().append_event(
            sid, role=role, content=content, metadata=metadata, status=status, pending_message_id=pending_message_id
        )

    def user_message(
        self,
        sid: str,
        text: str,
        metadata: dict[str, Any] | None = None,
        *,
        pending: bool = False,
        message_id: str = "",
    ) -> StoredEvent:
        """Store a user message; `pending` also keeps it until the agent's turn for it has ended."""
        pending_id = (message_id or "msg-" + secrets.token_hex(8)) if pending else None
        return self.event(sid, "user", {"type": "text", "text": text}, metadata, pending_message_id=pending_id)

    def status(self, sid: str, status: str, reason: str) -> SessionRecord:
        """Set the session's status and store the change as a system event (with the reason, if any)."""
        rec = self._store().update_session(sid, status=status)
        message = f"status: {status}" + (f" ({reason})" if reason else "")
        log.info("session %s", status, extra={"session_id": sid, "reason": reason})
        self.event(
            sid, "system", {"type": "system", "message": message}, {"reason": reason} if reason else {}, status=status
        )
        return rec
