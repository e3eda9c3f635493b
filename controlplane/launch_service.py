"""The launch service: plan (resolve the caller's rows, create what is missing) → daemon request
(ImportTranscript when needed, then LaunchSession with a deadline) → record the outcome.

It knows no HTTP: bad input is a domain error (`controlplane.errors`), which the app maps to 4xx in one
place; a daemon's answer becomes a LaunchResult with the HTTP status the REST layer sends.

Failure policy: when the daemon rejects the launch (a 4xx: invalid argument, not found, precondition,
exhausted), rows this request created are deleted again and reused rows are left as they were, so
nothing is written. When the daemon is unreachable, too slow or fails internally (502/504), the rows
stay and the agent session is marked failed with the error, so it is never left "active".

Size: the three steps above and their data (plan, request, outcome) are one transaction's story; the
HTTP mapping, the daemon client and the rows live in their own modules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from berth.daemon.v1 import daemon_pb2
from google.protobuf import json_format
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import owned_agent_session, owned_machine, owned_user_session, owned_workspace
from controlplane.auth import Principal
from controlplane.daemons import DaemonCallError, message_to_dict, to_struct
from controlplane.db.models import AgentSession, Machine, Message, UserSession, Workspace, new_id, utcnow
from controlplane.errors import InvalidField, NotFound
from controlplane.schemas import (
    AGENT_TO_PROVIDER,
    PROVIDER_SESSION_ID,
    PROVIDER_TO_AGENT,
    LaunchWorkspaceSessionRequest,
)
from controlplane.services import Services

__all__ = ["LaunchResult", "LaunchService", "resume_target", "transcript_messages"]

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


@dataclass
class _Plan:
    """Everything the daemon request needs, decided (and committed) before the daemon is called."""

    workspace: Workspace
    machine: Machine
    agent_session_id: str
    user_session_id: str
    provider: str
    worktree_name: str
    base_ref: str
    resume_id: str
    transcript: list[daemon_pb2.TranscriptMessage]
    created_rows: list[tuple[type[UserSession | AgentSession], str]]

    @property
    def ids(self) -> dict[str, str]:
        return {
            "agent_session_id": self.agent_session_id,
            "user_session_id": self.user_session_id,
            "workspace_id": self.workspace.id,
            "machine_id": self.machine.id,
        }


async def resume_target(db: AsyncSession, p: Principal, resume_session_id: str) -> AgentSession:
    """The caller's own session that `resume_session_id` names: its Berth agent_session_id, or a
    provider session id (claude session / codex thread, a UUID) recorded for it. NotFound otherwise, so
    no other owner's conversation can ever be resumed."""
    own = await db.get(AgentSession, resume_session_id)
    if own is not None and own.owner == p.owner:
        return own
    if not PROVIDER_SESSION_ID.fullmatch(resume_session_id) and not resume_session_id.startswith("session-"):
        raise InvalidField(
            "resume_session_id",
            "must be the agent_session_id of one of your sessions or a provider session id (a UUID)",
        )
    found = (
        (
            await db.execute(
                select(AgentSession)
                .where(AgentSession.owner == p.owner, AgentSession.provider_session_id == resume_session_id)
                .order_by(AgentSession.created_at.desc())
                .limit(1)
            )
        )
        .scalars()
        .first()
    )
    if found is None:
        raise NotFound("resume_session_id", resume_session_id)
    return found


async def transcript_messages(db: AsyncSession, session_id: str) -> list[daemon_pb2.TranscriptMessage]:
    """The stored (imported) messages of a session, in order, as TranscriptMessages."""
    rows = (
        (await db.execute(select(Message).where(Message.agent_session_id == session_id).order_by(Message.pk)))
        .scalars()
        .all()
    )
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


class LaunchService:
    """Launches (or re-attaches) agent sessions of workspaces on their machines' daemons."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def launch(
        self,
        p: Principal,
        workspace_id: str,
        req: LaunchWorkspaceSessionRequest,
        *,
        agent_id: str | None = None,
        task_id: str | None = None,
    ) -> LaunchResult:
        """Launch a session of `workspace_id`; domain errors for bad input found before the daemon is called."""
        started = time.monotonic()
        plan = await self._plan(p, workspace_id, req, agent_id=agent_id, task_id=task_id)
        try:
            ack = await self._request(p, plan, req, task_id=task_id, started=started)
        except DaemonCallError as err:
            result = LaunchResult(
                err.http_status, "error", {**plan.ids, "error": err.message, "code": err.code}, plan.agent_session_id
            )
            if err.field:
                result.payload["field"] = err.field
                result.payload["detail"] = [{"loc": ["body", err.field], "msg": err.message, "type": "daemon"}]
            return await self._failed(result, plan, err.http_status < 500, err.message, started)
        except asyncio.CancelledError:
            # The caller went away mid-launch: never leave the session looking active.
            await asyncio.shield(self._mark_failed(plan.agent_session_id, "launch cancelled"))
            raise
        payload = message_to_dict(ack.payload)
        if ack.status != "ok":
            msg = str(payload.get("error") or "daemon refused the launch")
            fld = payload.get("field")
            result = LaunchResult(422 if fld else 502, "error", {**payload, **plan.ids}, plan.agent_session_id)
            if fld:
                result.payload["detail"] = [{"loc": ["body", str(fld)], "msg": msg, "type": "daemon"}]
            return await self._failed(result, plan, bool(fld), msg, started)
        await self._record_success(plan, req, ack.session)
        self.services.metrics.launch_seconds.labels(outcome="ok").observe(time.monotonic() - started)
        return LaunchResult(200, "ok", {**payload, **plan.ids}, plan.agent_session_id)

    # -- plan --------------------------------------------------------------------------------------

    async def _plan(
        self,
        p: Principal,
        workspace_id: str,
        req: LaunchWorkspaceSessionRequest,
        *,
        agent_id: str | None,
        task_id: str | None,
    ) -> _Plan:
        created_rows: list[tuple[type[UserSession | AgentSession], str]] = []
        async with self.services.sessionmaker() as db:
            ws = await owned_workspace(db, p, workspace_id)
            agent = await self._agent_to_reuse(db, p, ws, req)
            machine = await self._machine(db, p, ws, req, agent)
            provider = _provider(req, agent, agent_id)
            user = await self._user_session(db, p, ws, req, agent)
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
            needs_transcript = bool(
                agent.imported
                and agent.provider_session_id
                and (agent.data or {}).get("transcript_machine_id") != machine.id
            )
            transcript = await transcript_messages(db, agent.id) if needs_transcript else []
            # Only a provider id recorded for the caller's own session is ever resumed; an empty import
            # has no conversation to resume and starts fresh.
            resume_id = agent.provider_session_id or ""
            if needs_transcript and not transcript:
                resume_id = ""
            plan = _Plan(
                workspace=ws,
                machine=machine,
                agent_session_id=agent.id,
                user_session_id=user.id,
                provider=provider,
                worktree_name=req.worktree_name or agent.worktree_name or "",
                base_ref=req.base_ref or ws.base_ref or "",
                resume_id=resume_id,
                transcript=transcript,
                created_rows=created_rows,
            )
            await db.commit()
        return plan

    @staticmethod
    async def _agent_to_reuse(
        db: AsyncSession, p: Principal, ws: Workspace, req: LaunchWorkspaceSessionRequest
    ) -> AgentSession | None:
        agent: AgentSession | None = None
        if req.agent_session_id:
            agent = await owned_agent_session(db, p, req.agent_session_id)
            if req.resume_session_id and req.resume_session_id not in (agent.id, agent.provider_session_id):
                raise InvalidField("resume_session_id", "names another session than agent_session_id")
        elif req.resume_session_id:
            agent = await resume_target(db, p, req.resume_session_id)
        if agent is not None and agent.workspace_id not in (None, ws.id):
            fld = "agent_session_id" if req.agent_session_id else "resume_session_id"
            raise InvalidField(fld, "the agent session belongs to another workspace")
        return agent

    @staticmethod
    async def _machine(
        db: AsyncSession, p: Principal, ws: Workspace, req: LaunchWorkspaceSessionRequest, agent: AgentSession | None
    ) -> Machine:
        # A session that ran stays on its machine unless the caller names one.
        machine_id = req.machine_id or (agent.machine_id if agent is not None and agent.launched else None)
        machine_id = machine_id or ws.default_machine_id
        if not machine_id:
            raise InvalidField("machine_id", "the workspace has no default machine; pass machine_id")
        machine = await owned_machine(db, p, machine_id)
        if agent is not None and agent.launched and agent.machine_id and agent.machine_id != machine.id:
            raise InvalidField("machine_id", "the agent session runs on another machine")
        return machine

    @staticmethod
    async def _user_session(
        db: AsyncSession, p: Principal, ws: Workspace, req: LaunchWorkspaceSessionRequest, agent: AgentSession | None
    ) -> UserSession | None:
        if req.user_session_id:
            user = await owned_user_session(db, p, req.user_session_id)
            if user.workspace_id not in (None, ws.id):
                raise InvalidField("user_session_id", "the user session belongs to another workspace")
            if agent is not None and agent.user_session_id not in (None, user.id):
                raise InvalidField("user_session_id", "the agent session belongs to another user session")
            return user
        if agent is not None and agent.user_session_id:
            return await db.get(UserSession, agent.user_session_id)
        return None

    # -- daemon request ----------------------------------------------------------------------------

    async def _request(
        self, p: Principal, plan: _Plan, req: LaunchWorkspaceSessionRequest, *, task_id: str | None, started: float
    ) -> daemon_pb2.LaunchSessionResponse:
        client = self.services.client_for(plan.machine)
        deadline = self.services.config.daemon_deadline_seconds
        settings = daemon_pb2.SessionSettings()
        if req.session_settings is not None:
            json_format.ParseDict(req.session_settings.model_dump(exclude_none=True), settings)
        settings.code.default_provider = plan.provider
        if not settings.code.mode:
            settings.code.mode = "agent"
        # The workspace's allow-list comes first; the launch may add rules and its own timeout.
        rules = list(dict.fromkeys([*(plan.workspace.allowed_tools or []), *settings.code.allowed_tools]))
        del settings.code.allowed_tools[:]
        settings.code.allowed_tools.extend(rules)
        if not settings.code.approval_timeout_seconds and plan.workspace.approval_timeout_seconds:
            settings.code.approval_timeout_seconds = plan.workspace.approval_timeout_seconds
        if not settings.code.max_turns and plan.workspace.max_turns:
            settings.code.max_turns = plan.workspace.max_turns
        if not settings.code.max_cost_usd and plan.workspace.max_cost_usd:
            settings.code.max_cost_usd = plan.workspace.max_cost_usd
        meta = dict(req.metadata or {})
        meta.setdefault("user_session_id", plan.user_session_id)
        if task_id:
            meta.setdefault("task_id", task_id)
        worktree_name = plan.worktree_name
        if plan.transcript:
            # No name ("the main workspace" of the import document): a worktree of its own, named as the
            # daemon names every unnamed session's.
            worktree_name = worktree_name or f"berth/{plan.agent_session_id}"
            await client.import_transcript(
                daemon_pb2.ImportTranscriptRequest(
                    provider_session_id=plan.resume_id,
                    messages=plan.transcript,
                    repository=plan.workspace.repository,
                    worktree_name=worktree_name,
                    base_ref=plan.base_ref,
                    owner=p.owner,
                ),
                deadline,
            )
            plan.worktree_name = worktree_name
        remaining = max(deadline - (time.monotonic() - started), 1.0)
        return await client.launch_session(
            daemon_pb2.LaunchSessionRequest(
                workspace_id=plan.workspace.id,
                repository=plan.workspace.repository,
                worktree_name=worktree_name,
                base_ref=plan.base_ref,
                initial_prompt=req.initial_prompt or "",
                session_settings=settings,
                resume_session_id=plan.resume_id,
                agent_session_id=plan.agent_session_id,
                metadata=to_struct(meta),
                owner=p.owner,
            ),
            remaining,
        )

    # -- record ------------------------------------------------------------------------------------

    async def _record_success(
        self, plan: _Plan, req: LaunchWorkspaceSessionRequest, session: daemon_pb2.Session
    ) -> None:
        """Record what the daemon's acknowledgement says of the session it launched (its typed `session`)."""
        async with self.services.sessionmaker() as db:
            agent = await db.get(AgentSession, plan.agent_session_id)
            if agent is not None:
                agent.launched = True
                agent.machine_id = plan.machine.id
                agent.status = session.status or "active"
                agent.status_seq = max(agent.status_seq or 0, session.last_seq)
                agent.worktree_path = session.worktree_path or None
                agent.worktree_name = plan.worktree_name or session.branch or None
                agent.provider_session_id = session.provider_session_id or agent.provider_session_id
                if req.initial_prompt:
                    agent.prompt = req.initial_prompt
                data = dict(agent.data or {})
                data.update(
                    workdir=agent.worktree_path,
                    model=session.model or data.get("model"),
                    provider=plan.provider,
                    branch=session.branch or None,
                )
                if plan.transcript:
                    data["transcript_machine_id"] = plan.machine.id
                agent.data = data
                agent.last_error = None
                agent.last_active = utcnow()
                await db.commit()
        self.services.ingest.ensure(plan.agent_session_id)

    async def _failed(
        self, result: LaunchResult, plan: _Plan, rejected: bool, error: str, started: float
    ) -> LaunchResult:
        """Rejected by the daemon → undo the rows this request created; otherwise mark the session failed."""
        if rejected and plan.created_rows:
            async with self.services.sessionmaker() as db, db.begin():
                for model, ident in reversed(plan.created_rows):
                    if model is UserSession:
                        # A reused agent session may have been attached to the new user session: detach it.
                        await db.execute(
                            update(AgentSession)
                            .where(AgentSession.user_session_id == ident)
                            .values(user_session_id=None)
                        )
                    await db.execute(delete(model).where(model.id == ident))
            for model, _ in plan.created_rows:
                result.payload.pop("agent_session_id" if model is AgentSession else "user_session_id", None)
        elif not rejected:
            await self._mark_failed(plan.agent_session_id, error)
        self.services.metrics.launch_seconds.labels(outcome="error").observe(time.monotonic() - started)
        return result

    async def _mark_failed(self, agent_session_id: str, error: str) -> None:
        async with self.services.sessionmaker() as db:
            agent = await db.get(AgentSession, agent_session_id)
            if agent is not None:
                agent.status = "failed"
                agent.last_error = error
                await db.commit()


def _provider(req: LaunchWorkspaceSessionRequest, agent: AgentSession | None, agent_id: str | None) -> str:
    """The provider to run: the reused session's own, else the requested one, else the caller's default."""
    code = req.session_settings.code if req.session_settings and req.session_settings.code else None
    provider = code.default_provider if code and code.default_provider else None
    if agent is not None:
        own = AGENT_TO_PROVIDER[agent.agent_id]
        if provider and provider != own:
            raise InvalidField(
                "session_settings.code.default_provider", f"the agent session runs {own}, not {provider}"
            )
        return own
    return provider or (AGENT_TO_PROVIDER[agent_id] if agent_id else "claude_code")
