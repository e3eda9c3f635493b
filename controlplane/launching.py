"""The launch path: pick the machine, create or reuse the session rows, (import the transcript,) call
the daemon's LaunchSession with a deadline, and record the outcome.

Failure policy: when the daemon rejects the launch (a 4xx: invalid argument, not found, precondition,
exhausted), rows this request created are deleted again and reused rows are left as they were, so
nothing is written. When the daemon is unreachable, too slow or fails internally (502/504), the rows
stay and the agent session is marked failed with the error, so it is never left "active".
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from berth.daemon.v1 import daemon_pb2
from fastapi import HTTPException, Request
from google.protobuf import json_format
from sqlalchemy import delete, select, update

from controlplane.api.common import (
    client_for,
    owned_agent_session,
    owned_machine,
    owned_user_session,
    owned_workspace,
)
from controlplane.auth import Principal
from controlplane.daemons import DaemonCallError, message_to_dict, to_struct
from controlplane.db.models import AgentSession, Machine, Message, UserSession, Workspace, new_id, utcnow
from controlplane.schemas import (
    AGENT_TO_PROVIDER,
    PROVIDER_SESSION_ID,
    PROVIDER_TO_AGENT,
    LaunchWorkspaceSessionRequest,
)

__all__ = ["LaunchResult", "launch_session", "resume_target", "transcript_messages"]

log = logging.getLogger("controlplane.launch")


@dataclass
class LaunchResult:
    """What the REST layer answers: HTTP status and the {status, payload} body."""

    http_status: int
    status: str
    payload: dict[str, Any] = field(default_factory=dict)
    agent_session_id: str | None = None

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "payload": self.payload}


def _unprocessable(fld: str, msg: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"loc": ["body", *fld.split(".")], "msg": msg, "type": "value_error"}])


async def resume_target(db: Any, p: Principal, resume_session_id: str) -> AgentSession:
    """The caller's own session that `resume_session_id` names: its Berth agent_session_id, or a
    provider session id (claude session / codex thread, a UUID) recorded for it. 404 otherwise, so
    no other owner's conversation can ever be resumed."""
    own = await db.get(AgentSession, resume_session_id)
    if own is not None and own.owner == p.owner:
        return own
    if not PROVIDER_SESSION_ID.fullmatch(resume_session_id) and not resume_session_id.startswith("session-"):
        raise _unprocessable(
            "resume_session_id", "must be the agent_session_id of one of your sessions or a provider session id (a UUID)"
        )
    found = (
        await db.execute(
            select(AgentSession)
            .where(AgentSession.owner == p.owner, AgentSession.provider_session_id == resume_session_id)
            .order_by(AgentSession.created_at.desc())
            .limit(1)
        )
    ).scalars().first()
    if found is None:
        raise HTTPException(status_code=404, detail=f"resume_session_id {resume_session_id!r} not found")
    return found


async def transcript_messages(db, session_id: str) -> list[daemon_pb2.TranscriptMessage]:
    """The stored (imported) messages of a session, in order, as TranscriptMessages."""
    rows = (
        await db.execute(select(Message).where(Message.agent_session_id == session_id).order_by(Message.pk))
    ).scalars().all()
    out = []
    for m in rows:
        tm = daemon_pb2.TranscriptMessage(
            message_id=(m.meta or {}).get("import_message_id") or m.id,
            role=m.role,
            created_at=m.created_at.isoformat().replace("+00:00", "Z"),
        )
        json_format.ParseDict(m.content or {}, tm.content, ignore_unknown_fields=True)
        meta = {k: v for k, v in (m.meta or {}).items() if k != "import_message_id"}
        if meta:
            tm.metadata.update(meta)
        out.append(tm)
    return out


async def launch_session(
    request: Request,
    p: Principal,
    workspace_id: str,
    req: LaunchWorkspaceSessionRequest,
    *,
    agent_id: str | None = None,
    task_id: str | None = None,
) -> LaunchResult:
    """Launch (or re-attach) an agent session of `workspace_id` on a daemon. Raises HTTPException for
    bad input found before the daemon is called."""
    state = request.app.state
    started = time.monotonic()
    created_rows: list[tuple[type, str]] = []
    async with state.sessionmaker() as db:
        ws: Workspace = await owned_workspace(db, p, workspace_id)
        agent: AgentSession | None = None
        if req.agent_session_id:
            agent = await owned_agent_session(db, p, req.agent_session_id)
            if req.resume_session_id and req.resume_session_id not in (agent.id, agent.provider_session_id):
                raise _unprocessable("resume_session_id", "names another session than agent_session_id")
        elif req.resume_session_id:
            agent = await resume_target(db, p, req.resume_session_id)
        if agent is not None and agent.workspace_id not in (None, ws.id):
            fld = "agent_session_id" if req.agent_session_id else "resume_session_id"
            raise _unprocessable(fld, "the agent session belongs to another workspace")
        # A session that ran stays on its machine unless the caller names one.
        machine_id = req.machine_id or (agent.machine_id if agent is not None and agent.launched else None)
        machine_id = machine_id or ws.default_machine_id
        if not machine_id:
            raise _unprocessable("machine_id", "the workspace has no default machine; pass machine_id")
        machine: Machine = await owned_machine(db, p, machine_id)
        if agent is not None and agent.launched and agent.machine_id and agent.machine_id != machine.id:
            raise _unprocessable("machine_id", "the agent session runs on another machine")

        code = req.session_settings.code if req.session_settings and req.session_settings.code else None
        provider = code.default_provider if code and code.default_provider else None
        if agent is not None:
            own = AGENT_TO_PROVIDER[agent.agent_id]
            if provider and provider != own:
                raise _unprocessable(
                    "session_settings.code.default_provider", f"the agent session runs {own}, not {provider}"
                )
            provider = own
        provider = provider or (AGENT_TO_PROVIDER[agent_id] if agent_id else "claude_code")

        user: UserSession | None = None
        if req.user_session_id:
            user = await owned_user_session(db, p, req.user_session_id)
            if user.workspace_id not in (None, ws.id):
                raise _unprocessable("user_session_id", "the user session belongs to another workspace")
            if agent is not None and agent.user_session_id not in (None, user.id):
                raise _unprocessable("user_session_id", "the agent session belongs to another user session")
        elif agent is not None and agent.user_session_id:
            user = await db.get(UserSession, agent.user_session_id)
        if user is None:
            user = UserSession(id=new_id("usess"), owner=p.owner, workspace_id=ws.id, name=None)
            db.add(user)
            await db.flush()  # before the agent session that refers to it
            created_rows.append((UserSession, user.id))
        if agent is None:
            agent = AgentSession(
                id=req.agent_session_id or new_id("session"),
                owner=p.owner,
                user_session_id=user.id,
                workspace_id=ws.id,
                agent_id=PROVIDER_TO_AGENT[provider],
                task_id=task_id,
                prompt=req.initial_prompt,
                status="created",
                data={},
                worktree_name=req.worktree_name,
            )
            db.add(agent)
            created_rows.append((AgentSession, agent.id))
        else:
            agent.user_session_id = agent.user_session_id or user.id
            agent.workspace_id = agent.workspace_id or ws.id
        if not agent.launched:
            agent.machine_id = machine.id
        worktree_name = req.worktree_name or agent.worktree_name or ""
        base_ref = req.base_ref or ws.base_ref or ""
        needs_transcript = (
            agent.imported and agent.provider_session_id and (agent.data or {}).get("transcript_machine_id") != machine.id
        )
        transcript = await transcript_messages(db, agent.id) if needs_transcript else []
        # Only a provider id recorded for the caller's own session is ever resumed.
        resume_id = agent.provider_session_id or ""
        if needs_transcript and not transcript:
            # An empty import has no conversation to resume: start fresh.
            needs_transcript = False
            resume_id = "" if resume_id == agent.provider_session_id else resume_id
        await db.commit()
        agent_session_id, user_session_id = agent.id, user.id

    ids = {
        "agent_session_id": agent_session_id,
        "user_session_id": user_session_id,
        "workspace_id": ws.id,
        "machine_id": machine.id,
    }
    client = client_for(request, machine)
    deadline = state.config.daemon_deadline_seconds
    settings = daemon_pb2.SessionSettings()
    if req.session_settings is not None:
        json_format.ParseDict(req.session_settings.model_dump(exclude_none=True), settings)
    settings.code.default_provider = provider
    if not settings.code.mode:
        settings.code.mode = "agent"
    meta = dict(req.metadata or {})
    meta.setdefault("user_session_id", user_session_id)
    if task_id:
        meta.setdefault("task_id", task_id)

    try:
        if needs_transcript:
            await client.import_transcript(
                daemon_pb2.ImportTranscriptRequest(
                    provider_session_id=resume_id,
                    messages=transcript,
                    repository=ws.repository,
                    worktree_name=worktree_name or agent_session_id,
                    base_ref=base_ref,
                    owner=p.owner,
                ),
                deadline,
            )
            worktree_name = worktree_name or agent_session_id
        remaining = max(deadline - (time.monotonic() - started), 1.0)
        ack = await client.launch_session(
            daemon_pb2.LaunchSessionRequest(
                workspace_id=ws.id,
                repository=ws.repository,
                worktree_name=worktree_name,
                base_ref=base_ref,
                initial_prompt=req.initial_prompt or "",
                session_settings=settings,
                resume_session_id=resume_id,
                agent_session_id=agent_session_id,
                metadata=to_struct(meta),
                owner=p.owner,
            ),
            remaining,
        )
    except DaemonCallError as err:
        result = LaunchResult(
            err.http_status, "error", {**ids, "error": err.message, "code": err.code}, agent_session_id
        )
        if err.field:
            result.payload["field"] = err.field
            result.payload["detail"] = [{"loc": ["body", err.field], "msg": err.message, "type": "daemon"}]
        await _record_failure(state, result, created_rows, err.http_status < 500, err.message)
        state.metrics.launch_seconds.labels(outcome="error").observe(time.monotonic() - started)
        return result
    except asyncio.CancelledError:
        # The caller went away mid-launch: never leave the session looking active.
        await asyncio.shield(_mark_failed(state, agent_session_id, "launch cancelled"))
        raise

    payload = message_to_dict(ack.payload)
    session = message_to_dict(ack.session) if ack.HasField("session") else {}
    if ack.status != "ok":
        msg = str(payload.get("error") or "daemon refused the launch")
        fld = payload.get("field")
        http = 422 if fld else 502
        result = LaunchResult(http, "error", {**payload, **ids}, agent_session_id)
        if fld:
            result.payload["detail"] = [{"loc": ["body", str(fld)], "msg": msg, "type": "daemon"}]
        await _record_failure(state, result, created_rows, bool(fld), msg)
        state.metrics.launch_seconds.labels(outcome="error").observe(time.monotonic() - started)
        return result

    async with state.sessionmaker() as db:
        agent = await db.get(AgentSession, agent_session_id)
        if agent is not None:
            agent.launched = True
            agent.machine_id = machine.id
            agent.status = str(payload.get("session_status") or session.get("status") or "active")
            agent.worktree_path = str(payload.get("worktree_path") or session.get("worktree_path") or "") or None
            agent.worktree_name = worktree_name or str(payload.get("branch") or session.get("branch") or "") or None
            agent.provider_session_id = (
                str(payload.get("provider_session_id") or session.get("provider_session_id") or "")
                or agent.provider_session_id
            )
            if req.initial_prompt:
                agent.prompt = req.initial_prompt
            data = dict(agent.data or {})
            data.update(
                workdir=agent.worktree_path,
                model=payload.get("model") or session.get("model") or data.get("model"),
                provider=provider,
                branch=payload.get("branch") or session.get("branch"),
            )
            if needs_transcript:
                data["transcript_machine_id"] = machine.id
            agent.data = data
            agent.last_error = None
            agent.last_active = utcnow()
            await db.commit()
    state.ingest.ensure(agent_session_id)
    state.metrics.launch_seconds.labels(outcome="ok").observe(time.monotonic() - started)
    return LaunchResult(200, "ok", {**payload, **ids}, agent_session_id)


async def _mark_failed(state: Any, agent_session_id: str, error: str) -> None:
    async with state.sessionmaker() as db:
        agent = await db.get(AgentSession, agent_session_id)
        if agent is not None:
            agent.status = "failed"
            agent.last_error = error
            await db.commit()


async def _record_failure(state: Any, result: LaunchResult, created_rows: list, rejected: bool, error: str) -> None:
    """Rejected by the daemon → undo the rows this request created; otherwise mark the session failed."""
    if rejected and created_rows:
        async with state.sessionmaker() as db, db.begin():
            for model, ident in reversed(created_rows):
                if model is UserSession:
                    # A reused agent session may have been attached to the new user session: detach it.
                    await db.execute(
                        update(AgentSession).where(AgentSession.user_session_id == ident).values(user_session_id=None)
                    )
                await db.execute(delete(model).where(model.id == ident))
        for model, _ in created_rows:
            result.payload.pop("agent_session_id" if model is AgentSession else "user_session_id", None)
        return
    if rejected:
        return
    await _mark_failed(state, result.agent_session_id or "", error)
