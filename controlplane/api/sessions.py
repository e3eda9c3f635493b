"""/api/sessions — the Session API seed document (list, create, get, update, delete, message) plus messages.

Choices the seed leaves open:
- POST /api/sessions accepts optional `workspace_id`, `machine_id`, `worktree_name` and `model`. Without
  `workspace_id` the caller's only workspace is used (none or several → the session is not bound to one).
  With a `prompt` and a known workspace + machine the session is launched at once (201 with `launch`
  holding the daemon's ack); otherwise it stays `created` until PATCH {"status": "active"} launches it.
- PATCH status: active→paused pauses the agent (so does created→paused for a launched session whose worktree
  the daemon is still writing); paused→active resumes it (so do completed|failed→active
  for a session that ran: the daemon restarts the agent with its provider session id); created→active
  launches it; created|active|paused→completed stops it; any other change is a 409. The daemon is called first; the
  row changes only when it succeeded.
- DELETE stops a running agent, then removes the session and its messages (and the daemon forgets it);
  the worktree stays (listed by GET /api/v1/workspaces/{id}/worktrees, removed by .../prune) unless
  `?remove_worktree=true`, which refuses (409, nothing changed) a worktree with uncommitted changes or
  untracked files unless `&force=true` too, and one that another session has taken over since.
- POST message answers `"sent"` when the message went to the agent at once and `"queued"` (an addition
  to the seed's value) when it waits for the current turn; either way the daemon has stored it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import (
    client_for,
    conflict,
    field_error,
    forget_on_daemon,
    get_db,
    not_found,
    owned_agent_session,
    owned_machine,
    owned_workspace,
)
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.daemons import DaemonCallError
from controlplane.db.models import AgentSession, Machine, Message, UserSession, Workspace, new_id, utcnow
from controlplane.launch_service import LaunchService
from controlplane.reads import session_detail
from controlplane.schemas import (
    AgentId,
    LaunchWorkspaceSessionRequest,
    MessageList,
    SendMessageRequest,
    SendMessageResponse,
    SessionCreate,
    SessionCreated,
    SessionDetail,
    SessionList,
    SessionSettings,
    SessionStatus,
    SessionUpdate,
)
from controlplane.services import get_services
from controlplane.statuses import NOT_ENDED, RUNNING, Change, change_for

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["sessions"], route_class=StrictJSONRoute)
Db = Annotated[AsyncSession, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]


async def _status_reason(db: AsyncSession, session_id: str) -> str:
    """Why the session has its status (e.g. "budget reached: max_turns 1"), from its last status event."""
    row = (
        await db.execute(
            select(Message.meta)
            .where(Message.agent_session_id == session_id, Message.status.is_not(None))
            .order_by(Message.seq.desc())
            .limit(1)
        )
    ).first()
    reason = (row[0] or {}).get("reason") if row else None
    return reason if isinstance(reason, str) else ""


# Offsets and seqs are 64-bit in every database.
MaxInt64 = 2**63 - 1


@router.get("", response_model=SessionList, summary="List sessions")
async def list_sessions(
    request: Request,
    p: Caller,
    task_id: str | None = None,
    agent_id: AgentId | None = None,
    status: SessionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MaxInt64)] = 0,
) -> Response:
    """The caller's sessions, newest first, filtered by task, agent and status."""
    body = await get_services(request).reads.page(
        p.owner, task_id=task_id, agent_id=agent_id, status=status, limit=limit, offset=offset
    )
    return Response(body, media_type="application/json")


def _created(s: AgentSession, launch: dict | None) -> dict:
    """The answer to POST /api/sessions: the new session, and its launch's acknowledgement if it launched."""
    return {
        "id": s.id,
        "agent_id": s.agent_id,
        "task_id": s.task_id,
        "status": s.status,
        "created_at": s.created_at,
        "workspace_id": s.workspace_id,
        "machine_id": s.machine_id,
        "user_session_id": s.user_session_id,
        "launch": launch,
    }


@router.post("", response_model=SessionCreated, status_code=201, summary="Create session")
async def create_session(body: SessionCreate, request: Request, db: Db, p: Caller) -> JSONResponse | dict:
    """Create a session (status `created`); launch it right away when a prompt and a workspace are known."""
    ws: Workspace | None = None
    if body.workspace_id:
        ws = await owned_workspace(db, p, body.workspace_id)
    else:
        mine = (await db.execute(select(Workspace).where(Workspace.owner == p.owner).limit(2))).scalars().all()
        ws = mine[0] if len(mine) == 1 else None
    machine: Machine | None = None
    if body.machine_id:
        machine = await owned_machine(db, p, body.machine_id)
    elif ws is not None and ws.default_machine_id:
        machine = await db.get(Machine, ws.default_machine_id)
    if body.machine_id and ws is None:
        raise field_error("workspace_id", "a machine needs a workspace; pass workspace_id")

    if body.prompt and ws is not None and machine is not None:
        settings = None
        if body.model:
            provider = "claude_code" if body.agent_id == "CLAUDE_CODE" else "codex"
            settings = SessionSettings.model_validate(
                {"code": {"default_provider": provider, "providers": {provider: {"model": body.model}}}}
            )
        launch_req = LaunchWorkspaceSessionRequest(
            machine_id=machine.id,
            initial_prompt=body.prompt,
            worktree_name=body.worktree_name,
            session_settings=settings,
        )
        result = await LaunchService(get_services(request)).launch(
            p, ws.id, launch_req, agent_id=body.agent_id, task_id=body.task_id
        )
        if result.status != "ok":
            return JSONResponse(result.body(), status_code=result.http_status)
        await db.rollback()
        s = await db.get(AgentSession, result.agent_session_id, populate_existing=True)
        assert s is not None
        return _created(s, result.body())

    now = utcnow()
    user = None
    if ws is not None:
        user = UserSession(id=new_id("usess"), owner=p.owner, workspace_id=ws.id, created_at=now)
        db.add(user)
        await db.flush()
    s = AgentSession(
        id=new_id("session"),
        owner=p.owner,
        user_session_id=user.id if user else None,
        workspace_id=ws.id if ws else None,
        machine_id=machine.id if machine else None,
        agent_id=body.agent_id,
        task_id=body.task_id,
        prompt=body.prompt,
        status="created",
        data={"model": body.model} if body.model else {},
        worktree_name=body.worktree_name,
        created_at=now,
    )
    db.add(s)
    await db.commit()
    return _created(s, None)


@router.get("/{session_id}", response_model=SessionDetail, summary="Get session details")
async def get_session(session_id: str, request: Request, p: Caller) -> Response:
    body = await get_services(request).reads.detail(p.owner, session_id)
    if body is None:
        raise not_found("session", session_id)
    return Response(body, media_type="application/json")


@router.patch("/{session_id}", response_model=SessionDetail, summary="Update session")
async def update_session(
    session_id: str, body: SessionUpdate, request: Request, db: Db, p: Caller
) -> dict | JSONResponse:
    """Change status (pausing, resuming, launching or stopping the agent), merge `data`, set `prompt`."""
    s = await owned_agent_session(db, p, session_id)
    new = body.status
    if new is not None and new != s.status:
        old = s.status
        machine = await db.get(Machine, s.machine_id) if s.machine_id else None
        await db.commit()  # hold no transaction (nor pooled connection) while the daemon works
        change = change_for(old, new, s.launched)
        if change is None:
            raise conflict(f"cannot change a session from {old!r} to {new!r}")
        answer = None  # the daemon's session after the change
        if change is Change.PAUSE:
            if machine is None or not s.launched:
                raise conflict("the session is not running on a machine")
            answer = await client_for(request, machine).pause_session(s.id)
        elif change is Change.RESUME:
            if machine is None:
                raise conflict("the session is not running on a machine")
            answer = await client_for(request, machine).resume_session(s.id, body.prompt or "")
        elif change is Change.LAUNCH:
            if s.workspace_id is None:
                raise conflict("the session has no workspace to launch in; create it with workspace_id")
            launch_req = LaunchWorkspaceSessionRequest(
                agent_session_id=s.id,
                machine_id=s.machine_id,
                initial_prompt=body.prompt or s.prompt,
                worktree_name=s.worktree_name,
            )
            workspace_id, agent_id = s.workspace_id, s.agent_id
            await db.rollback()  # the launch writes these rows itself
            result = await LaunchService(get_services(request)).launch(p, workspace_id, launch_req, agent_id=agent_id)
            if result.status != "ok":
                return JSONResponse(result.body(), status_code=result.http_status)
            launched = await db.get(AgentSession, session_id, populate_existing=True)
            assert launched is not None
            s = launched
        elif machine is not None and s.launched:  # Change.STOP
            answer = await client_for(request, machine).stop_session(s.id)
        s.status = new
        if answer is not None:  # status events up to here are older than this change
            s.status_seq = max(s.status_seq or 0, answer.last_seq)
        s.last_active = utcnow()
        if new == "active":
            get_services(request).ingest.ensure(s.id)
    if body.data is not None:
        s.data = {**(s.data or {}), **body.data}
    if body.prompt is not None:
        s.prompt = body.prompt
    await db.commit()
    return session_detail(s)


@router.delete("/{session_id}", status_code=204, summary="Delete session")
async def delete_session(
    session_id: str, request: Request, db: Db, p: Caller, remove_worktree: bool = False, force: bool = False
) -> Response:
    """Stop the agent if it runs, then remove the session; `?remove_worktree=true` removes its worktree too
    (one with uncommitted work only with `&force=true`)."""
    s = await owned_agent_session(db, p, session_id)
    machine = await db.get(Machine, s.machine_id) if s.machine_id else None
    await db.commit()  # hold no transaction while the daemon works
    if machine is not None and s.launched:
        client = client_for(request, machine)
        if remove_worktree and s.worktree_path:
            # Refused before anything is stopped: a dirty worktree (unless force), or another session's.
            await client.remove_worktree(s.id, p.owner, force=force, check_only=True)
        if s.status in NOT_ENDED:
            try:
                await client.stop_session(s.id)
            except DaemonCallError as err:
                if err.code != "NOT_FOUND":
                    raise
        if remove_worktree and s.worktree_path:
            await client.remove_worktree(s.id, p.owner, force=force)
        await forget_on_daemon(client, s.id, p.owner)
    await get_services(request).ingest.stop(s.id)
    user_id = s.user_session_id
    await db.execute(delete(Message).where(Message.agent_session_id == s.id))
    await db.execute(delete(AgentSession).where(AgentSession.id == s.id))
    if user_id:
        others = (await db.execute(select(func.count()).where(AgentSession.user_session_id == user_id))).scalar_one()
        if others == 0:
            await db.execute(delete(UserSession).where(UserSession.id == user_id))
    await db.commit()
    return Response(status_code=204)


@router.post("/{session_id}/message", response_model=SendMessageResponse, summary="Send message")
async def send_message(session_id: str, body: SendMessageRequest, request: Request, db: Db, p: Caller) -> dict:
    """Queue a follow-up message for the running agent; the agent's answer arrives as messages/events."""
    s = await owned_agent_session(db, p, session_id)
    if not s.launched or s.status not in RUNNING or s.machine_id is None:
        why = await _status_reason(db, s.id)
        raise conflict(
            f"session {s.id!r} is not running (status {s.status!r}{': ' + why if why else ''}); "
            "launch or resume it first"
        )
    machine = await db.get(Machine, s.machine_id)
    if machine is None:
        raise conflict(f"session {s.id!r} has no machine")
    message_id = new_id("msg")
    await db.commit()  # hold no transaction while the daemon works
    ack = await client_for(request, machine).send_message(s.id, body.content, message_id)
    s.last_active = utcnow()
    await db.commit()
    get_services(request).ingest.ensure(s.id)
    return {
        "message_id": ack.message_id or message_id,
        "status": ack.status if ack.status in ("sent", "queued") else "sent",
        "timestamp": ack.timestamp or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


@router.post("/{session_id}/interrupt", response_model=SessionDetail, summary="Interrupt the current turn")
async def interrupt_session(session_id: str, request: Request, db: Db, p: Caller) -> dict:
    """Stop the agent's current turn; the session stays active and takes the next message."""
    s = await owned_agent_session(db, p, session_id)
    if not s.launched or s.status not in RUNNING or s.machine_id is None:
        raise conflict(f"session {s.id!r} is not running (status {s.status!r})")
    machine = await db.get(Machine, s.machine_id)
    await db.commit()
    if machine is None:
        raise conflict(f"session {s.id!r} has no machine")
    await client_for(request, machine).interrupt_session(s.id)
    return session_detail(s)


@router.get("/{session_id}/messages", response_model=MessageList, summary="List a session's messages")
async def list_messages(
    session_id: str,
    request: Request,
    p: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MaxInt64)] = 0,
    after_seq: Annotated[int | None, Query(ge=0, le=MaxInt64)] = None,
) -> Response:
    """Messages in order: imported ones first, then the agent's events by seq. Page deep histories by
    `after_seq` (the last seq of the previous page; its cost does not grow with depth); `offset` works too."""
    body = await get_services(request).reads.messages(
        p.owner, session_id, limit=limit, offset=offset, after_seq=after_seq
    )
    if body is None:
        raise not_found("session", session_id)
    return Response(body, media_type="application/json")
