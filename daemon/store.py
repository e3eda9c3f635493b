"""The daemon's durable state: sessions, each session's numbered event log, which owner each provider
session id belongs to, the user messages not yet handed to an agent, and the agents' permission
requests with their decisions (SQLite, WAL).

Events are stored before anyone is told about them, and `seq` is assigned in
the same transaction that stores the event, so numbering has no gaps, is never
re-assigned, and a reader that reconnects with its last seq misses nothing —
also across daemon restarts.

Size: one SQLite schema and the queries on it (sessions, events, provider ids, pending messages,
approvals, left worktrees); every write that must be atomic with another is in this one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from daemon.statuses import APPROVAL_STATUSES, SESSION_STATUSES

__all__ = [
    "APPROVAL_STATUSES",
    "SESSION_STATUSES",
    "ApprovalRecord",
    "LeftWorktree",
    "PendingMessage",
    "SessionRecord",
    "StateStore",
    "StoredEvent",
    "utc_now",
]

_SCHEMA_VERSION = 4
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    agent_session_id    TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL DEFAULT '',
    provider            TEXT NOT NULL DEFAULT '',
    model               TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    provider_session_id TEXT NOT NULL DEFAULT '',
    repository          TEXT NOT NULL DEFAULT '',
    worktree_path       TEXT NOT NULL DEFAULT '',
    branch              TEXT NOT NULL DEFAULT '',
    pid                 INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    last_error          TEXT NOT NULL DEFAULT '',
    last_seq            INTEGER NOT NULL DEFAULT 0,
    settings            TEXT NOT NULL DEFAULT '{}',
    metadata            TEXT NOT NULL DEFAULT '{}',
    worktree_created    INTEGER NOT NULL DEFAULT 0,
    owner               TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status);
CREATE INDEX IF NOT EXISTS sessions_workspace ON sessions (workspace_id);
CREATE INDEX IF NOT EXISTS sessions_worktree ON sessions (worktree_path);
CREATE TABLE IF NOT EXISTS provider_sessions (
    provider_session_id TEXT PRIMARY KEY,
    owner               TEXT NOT NULL,
    created_at          TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_messages (
    agent_session_id TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    message_id       TEXT NOT NULL,
    content          TEXT NOT NULL,
    written          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_session_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
    approval_id      TEXT PRIMARY KEY,
    agent_session_id TEXT NOT NULL,
    request_key      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    tool_name        TEXT NOT NULL,
    input            TEXT NOT NULL DEFAULT '{}',
    tool_use_id      TEXT NOT NULL DEFAULT '',
    detail           TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    decided_at       TEXT NOT NULL DEFAULT '',
    message          TEXT NOT NULL DEFAULT '',
    remember         INTEGER NOT NULL DEFAULT 0,
    decided_by       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS approvals_session ON approvals (agent_session_id, created_at);
CREATE TABLE IF NOT EXISTS left_worktrees (
    worktree_path    TEXT PRIMARY KEY,
    agent_session_id TEXT NOT NULL,
    owner            TEXT NOT NULL DEFAULT '',
    branch           TEXT NOT NULL DEFAULT '',
    left_at          TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS left_worktrees_session ON left_worktrees (agent_session_id);
CREATE TABLE IF NOT EXISTS events (
    agent_session_id TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    role             TEXT NOT NULL,
    content          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    metadata         TEXT NOT NULL DEFAULT '{}',
    status           TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (agent_session_id, seq)
) WITHOUT ROWID;
"""
_JSON_FIELDS = ("settings", "metadata")
_BOOL_FIELDS = ("worktree_created",)
# Fields update_session() may change; the id, creation time and seq are the store's own.
_UPDATABLE = frozenset(
    {
        "owner",
        "workspace_id",
        "provider",
        "model",
        "status",
        "provider_session_id",
        "repository",
        "worktree_path",
        "branch",
        "pid",
        "last_error",
        "settings",
        "metadata",
        "worktree_created",
    }
)


def _private_file(path: Path) -> None:
    """Create `path` (and a missing parent, 0700) readable by its owner only; SQLite gives its -wal and
    -shm files the database file's mode."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds, e.g. 2025-01-02T03:04:05.123456Z."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LeftWorktree:
    """The worktree of a forgotten session: still its owner's until removed."""

    worktree_path: str
    agent_session_id: str
    owner: str
    branch: str
    left_at: str


@dataclass
class SessionRecord:
    """One agent session as the daemon remembers it."""

    agent_session_id: str
    workspace_id: str = ""
    provider: str = ""
    model: str = ""
    status: str = "created"
    provider_session_id: str = ""
    repository: str = ""
    worktree_path: str = ""
    branch: str = ""
    pid: int = 0
    created_at: str = ""
    updated_at: str = ""
    last_error: str = ""
    last_seq: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    worktree_created: bool = False
    # The control plane's owner of the session; "" for the machine's own user (grpcurl on the socket).
    owner: str = ""


@dataclass
class PendingMessage:
    """A user message the daemon accepted and has not yet seen through a turn of the agent."""

    agent_session_id: str
    seq: int  # the seq of its user event
    message_id: str
    content: str
    written: bool  # handed to the agent (stdin or a turn's command line); its turn has not ended


@dataclass
class ApprovalRecord:
    """One question an agent put before a tool ran (a permission) or to its user (a question)."""

    approval_id: str
    agent_session_id: str
    request_key: str  # the agent's own id for the request (claude's request_id, codex's JSON-RPC id)
    kind: str  # "permission" | "question"
    tool_name: str
    input: dict[str, Any]
    status: str = "pending"  # one of APPROVAL_STATUSES
    created_at: str = ""
    decided_at: str = ""
    message: str = ""  # the reason given with the decision (or why it ended without one)
    remember: bool = False
    tool_use_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # what else the agent said (suggestions, cwd …)
    decided_by: str = ""  # "user" | "rule" | "remembered" | "timeout" | "" (not decided)


@dataclass
class StoredEvent:
    """One numbered event of a session's log."""

    agent_session_id: str
    seq: int
    role: str
    content: dict[str, Any]
    created_at: str
    metadata: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # the new session status, on status-change events only


_SESSION_COLUMNS = [f.name for f in fields(SessionRecord)]


def _check_status(status: str) -> None:
    if status not in SESSION_STATUSES:
        raise InvalidArgument("status", f"must be one of {', '.join(SESSION_STATUSES)} (got {status!r})")


def _session_from_row(row: sqlite3.Row) -> SessionRecord:
    values = {name: row[name] for name in _SESSION_COLUMNS}
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    return SessionRecord(**values)


_APPROVAL_COLUMNS = [f.name for f in fields(ApprovalRecord)]


def _approval_from_row(row: sqlite3.Row) -> ApprovalRecord:
    values = {name: row[name] for name in _APPROVAL_COLUMNS}
    values["input"] = json.loads(values["input"])
    values["detail"] = json.loads(values["detail"])
    values["remember"] = bool(values["remember"])
    return ApprovalRecord(**values)


def _event_from_row(row: sqlite3.Row) -> StoredEvent:
    return StoredEvent(
        agent_session_id=row["agent_session_id"],
        seq=row["seq"],
        role=row["role"],
        content=json.loads(row["content"]),
        created_at=row["created_at"],
        metadata=json.loads(row["metadata"]),
        status=row["status"],
    )


class _Waiter:
    """Wakes the followers of one session; set from any thread, awaited on its loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody to wake
                self.loop.call_soon_threadsafe(self.event.set)


class StateStore:
    """Sessions and their event logs in one SQLite database (one connection, WAL mode)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        _private_file(self.db_path)
        # One connection, guarded by a lock so a worker thread may also append safely.
        self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._waiters: dict[str, _Waiter] = {}
        self._closed = False
        try:
            self._init_schema()
        except BaseException:
            self._db.close()
            raise

    def _init_schema(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise FailedPrecondition(
                f"state database {self.db_path} has schema version {version}, newer than this daemon's"
            )
        with self._transaction() as db:
            if version == 1:
                # v2: owners, provider-session ownership, pending messages. Sessions of v1 belong to
                # the machine's own user ("").
                db.execute("ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if version == 1:
                db.execute(
                    "INSERT OR IGNORE INTO provider_sessions (provider_session_id, owner, created_at)"
                    " SELECT provider_session_id, owner, created_at FROM sessions WHERE provider_session_id != ''"
                )
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), holding the connection lock."""
        with self._lock:
            if self._closed:
                raise FailedPrecondition("state store is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._closed:
                raise FailedPrecondition("state store is closed")
            return self._db.execute(sql, params).fetchall()

    # ---- sessions -----------------------------------------------------

    def insert_session(self, rec: SessionRecord) -> None:
        """Store a new session; AlreadyExists when its id is taken. Fills empty timestamps."""
        _check_status(rec.status)
        now = utc_now()
        rec.created_at = rec.created_at or now
        rec.updated_at = rec.updated_at or rec.created_at
        values = []
        for name in _SESSION_COLUMNS:
            value = getattr(rec, name)
            if name in _JSON_FIELDS:
                value = json.dumps(value or {})
            elif name in _BOOL_FIELDS:
                value = int(bool(value))
            values.append(value)
        placeholders = ", ".join("?" for _ in _SESSION_COLUMNS)
        try:
            with self._transaction() as db:
                db.execute(f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) VALUES ({placeholders})", values)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"session {rec.agent_session_id} already exists") from None

    def update_session(self, agent_session_id: str, **changes: Any) -> SessionRecord:
        """Change the given fields of a session (and its updated_at); return the new record."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TypeError(f"update_session cannot change {', '.join(sorted(unknown))}")
        if "status" in changes:
            _check_status(changes["status"])
        assignments, params = ["updated_at = ?"], [utc_now()]
        for name, value in changes.items():
            if name in _JSON_FIELDS:
                value = json.dumps(value or {})
            elif name in _BOOL_FIELDS:
                value = int(bool(value))
            assignments.append(f"{name} = ?")
            params.append(value)
        with self._transaction() as db:
            row = db.execute(
                f"UPDATE sessions SET {', '.join(assignments)} WHERE agent_session_id = ? RETURNING *",
                (*params, agent_session_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"session {agent_session_id} not found")
        return _session_from_row(row)

    def get_session(self, agent_session_id: str) -> SessionRecord | None:
        """The session, or None."""
        rows = self._query("SELECT * FROM sessions WHERE agent_session_id = ?", (agent_session_id,))
        return _session_from_row(rows[0]) if rows else None

    def list_sessions(self, *, status: str = "", workspace_id: str = "") -> list[SessionRecord]:
        """Sessions, oldest first, optionally filtered by status and/or workspace."""
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if workspace_id:
            where.append("workspace_id = ?")
            params.append(workspace_id)
        sql = "SELECT * FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, agent_session_id"
        return [_session_from_row(row) for row in self._query(sql, tuple(params))]

    def forget_session(self, agent_session_id: str) -> str:
        """Delete a session like delete_session(), keeping a record of its worktree (its owner's, until
        it is removed) when no other session holds it. Returns that worktree's path, or ""."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM sessions WHERE agent_session_id = ?", (agent_session_id,)).fetchone()
            kept = ""
            if row is not None and row["worktree_path"]:
                others = db.execute(
                    "SELECT 1 FROM sessions WHERE worktree_path = ? AND agent_session_id != ? LIMIT 1",
                    (row["worktree_path"], agent_session_id),
                ).fetchone()
                if others is None:
                    kept = row["worktree_path"]
                    db.execute(
                        "INSERT OR REPLACE INTO left_worktrees"
                        " (worktree_path, agent_session_id, owner, branch, left_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (kept, agent_session_id, row["owner"], row["branch"], utc_now()),
                    )
            for table in ("events", "pending_messages", "approvals", "sessions"):
                db.execute(f"DELETE FROM {table} WHERE agent_session_id = ?", (agent_session_id,))
        self._wake(agent_session_id)
        return kept

    def left_worktree(self, *, worktree_path: str = "", agent_session_id: str = "") -> LeftWorktree | None:
        """The record of a forgotten session's worktree, by its path or by that session's id."""
        column, value = ("worktree_path", worktree_path) if worktree_path else ("agent_session_id", agent_session_id)
        rows = self._query(f"SELECT * FROM left_worktrees WHERE {column} = ?", (value,))
        if not rows:
            return None
        r = rows[0]
        return LeftWorktree(r["worktree_path"], r["agent_session_id"], r["owner"], r["branch"], r["left_at"])

    def drop_left_worktree(self, worktree_path: str) -> None:
        """Forget the record of a forgotten session's worktree (it was removed, or taken over)."""
        with self._transaction() as db:
            db.execute("DELETE FROM left_worktrees WHERE worktree_path = ?", (worktree_path,))

    def delete_session(self, agent_session_id: str) -> None:
        """Delete a session and its events (no error when absent); ends its followers."""
        with self._transaction() as db:
            db.execute("DELETE FROM events WHERE agent_session_id = ?", (agent_session_id,))
            db.execute("DELETE FROM pending_messages WHERE agent_session_id = ?", (agent_session_id,))
            db.execute("DELETE FROM approvals WHERE agent_session_id = ?", (agent_session_id,))
            db.execute("DELETE FROM sessions WHERE agent_session_id = ?", (agent_session_id,))
        self._wake(agent_session_id)

    # ---- events -------------------------------------------------------

    def append_event(
        self,
        agent_session_id: str,
        *,
        role: str,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        status: str = "",
        pending_message_id: str | None = None,
    ) -> StoredEvent:
        """Store the session's next event (seq = last_seq + 1) and wake its followers.

        With `pending_message_id`, the event is a user message that is also kept, in the same
        transaction, as pending until the agent's turn for it ends (see PendingMessage).
        """
        if status:
            _check_status(status)
        event = StoredEvent(
            agent_session_id=agent_session_id,
            seq=0,
            role=role,
            content=content,
            created_at=utc_now(),
            metadata=metadata or {},
            status=status,
        )
        content_json, metadata_json = json.dumps(content), json.dumps(event.metadata)
        with self._transaction() as db:
            row = db.execute(
                "UPDATE sessions SET last_seq = last_seq + 1 WHERE agent_session_id = ? RETURNING last_seq",
                (agent_session_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"session {agent_session_id} not found")
            event.seq = row[0]
            db.execute(
                "INSERT INTO events (agent_session_id, seq, role, content, created_at, metadata, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (agent_session_id, event.seq, role, content_json, event.created_at, metadata_json, status),
            )
            if pending_message_id is not None:
                db.execute(
                    "INSERT INTO pending_messages (agent_session_id, seq, message_id, content) VALUES (?, ?, ?, ?)",
                    (agent_session_id, event.seq, pending_message_id, str(content.get("text", ""))),
                )
        self._wake(agent_session_id)
        return event

    # ---- pending messages -------------------------------------------------

    def pending_messages(self, agent_session_id: str) -> list[PendingMessage]:
        """The session's pending messages, oldest first."""
        rows = self._query(
            "SELECT * FROM pending_messages WHERE agent_session_id = ? ORDER BY seq", (agent_session_id,)
        )
        return [
            PendingMessage(r["agent_session_id"], r["seq"], r["message_id"], r["content"], bool(r["written"]))
            for r in rows
        ]

    def mark_written(self, agent_session_id: str, seq: int) -> None:
        """The pending message `seq` has been handed to the agent."""
        with self._transaction() as db:
            db.execute(
                "UPDATE pending_messages SET written = 1 WHERE agent_session_id = ? AND seq = ?",
                (agent_session_id, seq),
            )

    def finish_written(self, agent_session_id: str) -> None:
        """The agent's turn ended: the messages handed to it are no longer pending."""
        with self._transaction() as db:
            db.execute("DELETE FROM pending_messages WHERE agent_session_id = ? AND written = 1", (agent_session_id,))

    def drop_pending(self, agent_session_id: str, seq: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM pending_messages WHERE agent_session_id = ? AND seq = ?", (agent_session_id, seq))

    # ---- approvals -----------------------------------------------------------

    def insert_approval(self, rec: ApprovalRecord) -> ApprovalRecord:
        """Store a new approval (created_at filled when empty)."""
        rec.created_at = rec.created_at or utc_now()
        values = []
        for name in _APPROVAL_COLUMNS:
            value = getattr(rec, name)
            if name in ("input", "detail"):
                value = json.dumps(value or {})
            elif name == "remember":
                value = int(bool(value))
            values.append(value)
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO approvals ({', '.join(_APPROVAL_COLUMNS)}) VALUES ({', '.join('?' for _ in values)})",
                values,
            )
        return rec

    def decide_approval(
        self, approval_id: str, *, status: str, message: str = "", remember: bool = False, decided_by: str = "user"
    ) -> ApprovalRecord | None:
        """Move a pending approval to `status`; None when it is not pending (any more)."""
        if status not in APPROVAL_STATUSES or status == "pending":
            raise InvalidArgument("status", f"must be one of {', '.join(APPROVAL_STATUSES[1:])}")
        with self._transaction() as db:
            row = db.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, message = ?, remember = ?, decided_by = ?"
                " WHERE approval_id = ? AND status = 'pending' RETURNING *",
                (status, utc_now(), message, int(remember), decided_by, approval_id),
            ).fetchone()
        return _approval_from_row(row) if row is not None else None

    def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        rows = self._query("SELECT * FROM approvals WHERE approval_id = ?", (approval_id,))
        return _approval_from_row(rows[0]) if rows else None

    def list_approvals(self, agent_session_id: str, *, status: str = "") -> list[ApprovalRecord]:
        """The session's approvals, oldest first (only those with `status` when given)."""
        sql = "SELECT * FROM approvals WHERE agent_session_id = ?"
        params: tuple[Any, ...] = (agent_session_id,)
        if status:
            sql += " AND status = ?"
            params += (status,)
        rows = self._query(sql + " ORDER BY created_at, approval_id", params)
        return [_approval_from_row(row) for row in rows]

    def count_pending_approvals(self, agent_session_id: str) -> int:
        rows = self._query(
            "SELECT count(*) FROM approvals WHERE agent_session_id = ? AND status = 'pending'", (agent_session_id,)
        )
        return int(rows[0][0])

    # ---- provider session ownership -----------------------------------------

    def provider_session_owner(self, provider_session_id: str) -> str | None:
        """The owner a provider session id belongs to on this machine, or None when unknown."""
        rows = self._query("SELECT owner FROM provider_sessions WHERE provider_session_id = ?", (provider_session_id,))
        return rows[0]["owner"] if rows else None

    def claim_provider_session(self, provider_session_id: str, owner: str) -> str:
        """Record `owner` for the id unless one is recorded already; returns the id's owner."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO provider_sessions (provider_session_id, owner, created_at) VALUES (?, ?, ?)",
                (provider_session_id, owner, utc_now()),
            )
            row = db.execute(
                "SELECT owner FROM provider_sessions WHERE provider_session_id = ?", (provider_session_id,)
            ).fetchone()
        return row["owner"]

    def reassign_provider_sessions(self, from_owner: str, to_owner: str, provider_session_ids: list[str]) -> None:
        """Hand the ids that `from_owner` holds to `to_owner` (a session adopted by an owner)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE provider_sessions SET owner = ? WHERE provider_session_id = ? AND owner = ?",
                [(to_owner, pid, from_owner) for pid in provider_session_ids],
            )

    def sessions_at(self, worktree_path: str) -> list[SessionRecord]:
        """Every session whose worktree is `worktree_path`, oldest first."""
        rows = self._query(
            "SELECT * FROM sessions WHERE worktree_path = ? ORDER BY created_at, agent_session_id", (worktree_path,)
        )
        return [_session_from_row(row) for row in rows]

    def events_after(self, agent_session_id: str, after_seq: int, limit: int = 1000) -> list[StoredEvent]:
        """Up to `limit` stored events with seq > after_seq, in order."""
        rows = self._query(
            "SELECT * FROM events WHERE agent_session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (agent_session_id, after_seq, limit),
        )
        return [_event_from_row(row) for row in rows]

    def _wake(self, agent_session_id: str) -> None:
        waiter = self._waiters.pop(agent_session_id, None)
        if waiter is not None:
            waiter.wake()

    async def follow(
        self, agent_session_id: str, after_seq: int, *, history_only: bool = False
    ) -> AsyncIterator[StoredEvent]:
        """Every event after `after_seq`, then live ones as they are appended, in order.

        Ends after the history when `history_only`, otherwise when the session is
        deleted or the store closes. NotFound when the session does not exist.
        """
        if self.get_session(agent_session_id) is None:
            raise NotFound(f"session {agent_session_id} not found")
        last = max(int(after_seq), 0)
        while True:
            # Take the waiter before reading, so an append after the read still wakes us.
            waiter = self._waiters.get(agent_session_id)
            if (waiter is None or waiter.loop is not asyncio.get_running_loop()) and not history_only:
                waiter = self._waiters[agent_session_id] = _Waiter()
            if self._closed:
                return
            batch = self.events_after(agent_session_id, last)
            for event in batch:
                last = event.seq
                yield event
            if batch:
                continue
            if history_only or waiter is None or self._closed or self.get_session(agent_session_id) is None:
                return
            await waiter.event.wait()

    def close(self) -> None:
        """Close the database and end every follower. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.wake()
