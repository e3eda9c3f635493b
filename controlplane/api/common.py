"""Helpers shared by the routers: database sessions, owner-scoped look-ups, daemon errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.auth import Principal
from controlplane.daemons import DaemonCallError, DaemonClient
from controlplane.db.models import AgentSession, Machine, UserSession, Workspace
from controlplane.errors import Conflict, InvalidField, NotFound
from controlplane.services import get_services

__all__ = [
    "client_for",
    "conflict",
    "field_error",
    "forget_on_daemon",
    "get_db",
    "not_found",
    "owned_agent_session",
    "owned_machine",
    "owned_user_session",
    "owned_workspace",
]


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session for one request."""
    async with get_services(request).sessionmaker() as db:
        yield db


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(what, ident)


def conflict(detail: str) -> Conflict:
    return Conflict(detail)


def field_error(field: str, msg: str, *, where: str = "body") -> InvalidField:
    """A 422 shaped like FastAPI's own validation errors, naming the field."""
    return InvalidField(field, msg, where=where)


async def owned_workspace(
    db: AsyncSession, p: Principal, workspace_id: str, *, admin_sees_all: bool = False
) -> Workspace:
    ws = await db.get(Workspace, workspace_id)
    if ws is None or (ws.owner != p.owner and not (admin_sees_all and p.is_admin)):
        raise not_found("workspace", workspace_id)
    return ws


async def owned_machine(db: AsyncSession, p: Principal, machine_id: str, *, admin_sees_all: bool = False) -> Machine:
    m = await db.get(Machine, machine_id)
    if m is None or (m.owner != p.owner and not (admin_sees_all and p.is_admin)):
        raise not_found("machine", machine_id)
    return m


async def owned_agent_session(db: AsyncSession, p: Principal, session_id: str) -> AgentSession:
    s = await db.get(AgentSession, session_id)
    if s is None or s.owner != p.owner:
        raise not_found("session", session_id)
    return s


async def owned_user_session(db: AsyncSession, p: Principal, user_session_id: str) -> UserSession:
    u = await db.get(UserSession, user_session_id)
    if u is None or u.owner != p.owner:
        raise not_found("user session", user_session_id)
    return u


def client_for(request: Request, machine: Machine) -> DaemonClient:
    return get_services(request).client_for(machine)


async def session_daemon(request: Request, db: AsyncSession, p: Principal, session_id: str) -> DaemonClient | None:
    """The daemon of the caller's session `session_id` (404 when it is not theirs), or None when the session
    never ran on one. No transaction stays open while the daemon works."""
    s = await owned_agent_session(db, p, session_id)
    machine = await db.get(Machine, s.machine_id) if s.launched and s.machine_id else None
    await db.commit()
    return client_for(request, machine) if machine is not None else None


async def forget_on_daemon(client: DaemonClient, session_id: str, owner: str) -> None:
    """The daemon forgets a session the control plane deleted (its kept worktree stays the owner's, for
    prune); one still running there is stopped first. Already gone, or a daemon older than ForgetSession:
    nothing to do."""
    try:
        try:
            await client.forget_session(session_id, owner)
        except DaemonCallError as err:
            if err.code != "FAILED_PRECONDITION":
                raise
            await client.stop_session(session_id)  # still running there, though the row said otherwise
            await client.forget_session(session_id, owner)
    except DaemonCallError as err:
        if err.code not in ("NOT_FOUND", "UNIMPLEMENTED"):
            raise
