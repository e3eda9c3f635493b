"""SQLAlchemy 2 models of the control plane's tables (the migrations create them)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AgentSession",
    "Base",
    "Machine",
    "Message",
    "Token",
    "UTCDateTime",
    "UserSession",
    "Workspace",
    "new_id",
    "utcnow",
]


def new_id(prefix: str) -> str:
    """A prefixed random id such as ``session-3f9c…``."""
    return f"{prefix}-{secrets.token_hex(8)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime()}


class Token(Base):
    """A bearer token: only its SHA-256 hash is stored."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Machine(Base):
    """A developer machine running a daemon."""

    __tablename__ = "machines"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(1000))
    tls_ca: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The daemon's bearer token; never returned by the API.
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A machine the control plane cannot dial: its daemon dials the tunnel listener (controlplane/tunnel.py).
    dial_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # SHA-256 of the one-time enrollment token, until it is used or expires.
    enrollment_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)
    enrollment_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # SHA-256 of the machine credential its daemon presents on the tunnel (None: not enrolled, or revoked).
    credential_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)
    # Which control-plane replica holds the machine's tunnel now (None: offline), since when, last heard of.
    tunnel_replica: Mapped[str | None] = mapped_column(String(200), nullable=True)
    connected_since: Mapped[datetime | None] = mapped_column(nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)


class Workspace(Base):
    """A repository (path or clone URL on the machine) that sessions run in."""

    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    repository: Mapped[str] = mapped_column(String(2000))
    default_machine_id: Mapped[str | None] = mapped_column(
        ForeignKey("machines.id", ondelete="SET NULL"), nullable=True
    )
    base_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Tool rules every session of the workspace runs unasked; the timeout after which an approval is refused.
    allowed_tools: Mapped[list[str]] = mapped_column(JSON, default=list)
    approval_timeout_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Budget defaults of the workspace's sessions.
    max_turns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


class UserSession(Base):
    """A user's conversation container; holds one or more agent sessions."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True)
    name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentSession(Base):
    """One agent run; its id is the daemon's agent_session_id."""

    __tablename__ = "agent_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    user_session_id: Mapped[str | None] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="CASCADE"), nullable=True
    )
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True)
    machine_id: Mapped[str | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"), nullable=True)
    agent_id: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provider_session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    imported: Mapped[bool] = mapped_column(Boolean, default=False)
    worktree_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    worktree_path: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    launched: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The daemon seq the stored status reflects (an event's, or the daemon's last_seq when it answered a
    # status change): ingest applies only status events newer than it.
    status_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_active: Mapped[datetime | None] = mapped_column(nullable=True)
    # How many of the agent's approvals wait for a decision (as the daemon last said, from the event stream).
    pending_approvals: Mapped[int] = mapped_column(Integer, default=0)
    # The agent's usage summed over its turns (from each turn's metadata.turn_usage); cost is NULL while no
    # turn reported one (codex does not).
    usage_input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_cache_creation_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    usage_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    usage_turns: Mapped[int] = mapped_column(Integer, default=0)
    usage_duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # How many messages the session has, kept exact by ingest, import and delete (reads never count).
    message_count: Mapped[int] = mapped_column(BigInteger, default=0)


# The session list's order (newest first, ties by id), so a page is read straight from the index.
Index("ix_agent_sessions_owner_newest", AgentSession.owner, AgentSession.created_at.desc(), AgentSession.id)


class Message(Base):
    """One stored message: an ingested daemon event (seq set) or an imported one (seq NULL)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("agent_session_id", "seq", name="uq_messages_session_seq"),
        Index("ix_messages_session_pk", "agent_session_id", "pk"),
    )
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    agent_session_id: Mapped[str] = mapped_column(ForeignKey("agent_sessions.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    role: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
