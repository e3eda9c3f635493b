"""The gRPC servicer: reads requests, calls the supervisor, maps errors to status codes.

Domain errors (`daemon.errors`) become `context.abort(code, message)` here and
nowhere else.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from berth.daemon.v1 import daemon_pb2 as pb
from berth.daemon.v1 import daemon_pb2_grpc
from google.protobuf import json_format, struct_pb2

from daemon import metrics
from daemon.agents.base import Decision
from daemon.carriable import make_carriable
from daemon.errors import DaemonError, InvalidArgument
from daemon.launch_request import LaunchRequest
from daemon.store import ApprovalRecord, SessionRecord, StoredEvent
from daemon.supervisor import Supervisor

__all__ = ["DaemonService", "approval_to_pb", "event_to_pb", "session_to_pb"]

log = logging.getLogger("berth.daemon.service")
T = TypeVar("T")


def _struct(data: dict[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if data:
        # The JSON round trip turns paths, datetimes and the like into strings.
        s.update(json.loads(json.dumps(data, default=str)))
    return s


def _dict(s: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(s)


def approval_to_pb(rec: ApprovalRecord) -> pb.Approval:
    """A stored approval as the wire message."""
    return pb.Approval(
        id=rec.approval_id,
        agent_session_id=rec.agent_session_id,
        kind=rec.kind,
        tool_name=rec.tool_name,
        input=_struct(rec.input),
        status=rec.status,
        created_at=rec.created_at,
        decided_at=rec.decided_at,
        message=rec.message,
        remember=rec.remember,
        tool_use_id=rec.tool_use_id,
        decided_by=rec.decided_by,
        detail=_struct(rec.detail),
    )


def session_to_pb(
    rec: SessionRecord, *, turn_running: bool = False, queued: int = 0, pending_approvals: int = 0
) -> pb.Session:
    """A stored session as the wire message."""
    return pb.Session(
        agent_session_id=rec.agent_session_id,
        workspace_id=rec.workspace_id,
        provider=rec.provider,
        model=rec.model,
        status=rec.status,
        provider_session_id=rec.provider_session_id,
        repository=rec.repository,
        worktree_path=rec.worktree_path,
        branch=rec.branch,
        pid=rec.pid,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        last_error=rec.last_error,
        last_seq=rec.last_seq,
        turn_running=turn_running,
        queued_messages=queued,
        metadata=_struct(rec.metadata),
        owner=rec.owner,
        pending_approvals=pending_approvals,
    )


def event_to_pb(ev: StoredEvent) -> pb.Event:
    """A stored event as the wire message; one that cannot be carried as it is (stored before the
    daemon bounded events) goes in its carriable form, so a stream never stops at it."""
    try:
        return _event_pb(ev.agent_session_id, ev.seq, ev.role, ev.content, ev.created_at, ev.metadata, ev.status)
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        content, metadata = make_carriable(ev.content, ev.metadata)
        return _event_pb(ev.agent_session_id, ev.seq, ev.role, content, ev.created_at, metadata, ev.status)


def _event_pb(
    sid: str, seq: int, role: str, content: dict[str, Any], created_at: str, metadata: dict[str, Any], status: str
) -> pb.Event:
    return pb.Event(
        agent_session_id=sid,
        seq=seq,
        role=role,
        content=json_format.ParseDict(content, pb.Content(), ignore_unknown_fields=True),
        created_at=created_at,
        metadata=_struct(metadata),
        status=status,
    )


def _content_dict(c: pb.Content) -> dict[str, Any]:
    return json_format.MessageToDict(c, preserving_proto_field_name=True)


def _rpc(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Map domain errors of a unary handler to gRPC status codes."""

    @functools.wraps(fn)
    async def wrapper(self: DaemonService, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await fn(self, request, context)
        except DaemonError as exc:
            await context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    return wrapper


class DaemonService(daemon_pb2_grpc.DaemonServiceServicer):
    """berth.daemon.v1.DaemonService backed by a Supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def _session(self, rec: SessionRecord) -> pb.Session:
        running, queued = self.supervisor.live_state(rec.agent_session_id)
        return session_to_pb(
            rec,
            turn_running=running,
            queued=queued,
            pending_approvals=self.supervisor.pending_approvals(rec.agent_session_id),
        )

    @_rpc
    async def LaunchSession(
        self, request: pb.LaunchSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.LaunchSessionResponse:
        started = time.perf_counter()
        code = request.session_settings.code
        provider = code.default_provider
        model = code.providers.codex.model if provider.strip().lower() == "codex" else code.providers.claude_code.model
        settings = json_format.MessageToDict(request.session_settings, preserving_proto_field_name=True)
        result = await self.supervisor.launch(
            LaunchRequest(
                repository=request.repository,
                workspace_id=request.workspace_id,
                worktree_name=request.worktree_name,
                base_ref=request.base_ref,
                initial_prompt=request.initial_prompt,
                provider=provider,
                mode=code.mode,
                model=model,
                thinking=code.providers.codex.thinking,
                resume_session_id=request.resume_session_id,
                agent_session_id=request.agent_session_id,
                metadata=_dict(request.metadata),
                settings={"session_settings": settings} if settings else {},
                owner=request.owner,
                permissions=code.permissions,
                allowed_tools=list(code.allowed_tools),
                approval_timeout_seconds=code.approval_timeout_seconds,
                max_turns=code.max_turns,
                max_cost_usd=code.max_cost_usd,
            )
        )
        rec = result.session
        metrics.LAUNCH_SECONDS.observe(time.perf_counter() - started)
        payload = {
            "agent_session_id": rec.agent_session_id,
            "workspace_id": rec.workspace_id,
            "worktree_path": rec.worktree_path,
            "branch": rec.branch,
            "provider": rec.provider,
            "model": rec.model,
            "pid": result.pid,
            "session_status": rec.status,
            "provider_session_id": rec.provider_session_id,
            "reused": result.reused,
            "pooled": result.pooled,
            "checkout_pending": result.checkout_pending,
        }
        return pb.LaunchSessionResponse(status="ok", payload=_struct(payload), session=self._session(rec))

    @_rpc
    async def SendMessage(
        self, request: pb.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendMessageResponse:
        message_id, status, ts = await self.supervisor.send_message(
            request.agent_session_id, request.content, request.message_id
        )
        return pb.SendMessageResponse(message_id=message_id, status=status, timestamp=ts)

    @_rpc
    async def InterruptSession(self, request: pb.SessionRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        return self._session(await self.supervisor.interrupt(request.agent_session_id))

    @_rpc
    async def PauseSession(self, request: pb.SessionRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        return self._session(await self.supervisor.pause(request.agent_session_id))

    @_rpc
    async def ResumeSession(self, request: pb.ResumeSessionRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        return self._session(await self.supervisor.resume(request.agent_session_id, request.prompt))

    @_rpc
    async def StopSession(self, request: pb.StopSessionRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        grace = request.grace_seconds if request.grace_seconds > 0 else None
        return self._session(await self.supervisor.stop(request.agent_session_id, grace))

    @_rpc
    async def GetSession(self, request: pb.SessionRequest, context: grpc.aio.ServicerContext) -> pb.Session:
        return self._session(self.supervisor.get(request.agent_session_id))

    @_rpc
    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSessionsResponse:
        recs = self.supervisor.list_sessions(status=request.status, workspace_id=request.workspace_id)
        return pb.ListSessionsResponse(sessions=[self._session(r) for r in recs])

    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Event]:
        try:
            stream = self.supervisor.events(request.agent_session_id, request.after_seq, request.history_only)
            async for ev in stream:
                yield event_to_pb(ev)
                metrics.EVENTS_STREAMED.inc()
        except DaemonError as exc:
            await context.abort(exc.code, exc.message)

    @_rpc
    async def ImportTranscript(
        self, request: pb.ImportTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> pb.ImportTranscriptResponse:
        messages = [
            {
                "message_id": m.message_id,
                "role": m.role,
                "content": _content_dict(m.content),
                "created_at": m.created_at,
                "metadata": _dict(m.metadata),
            }
            for m in request.messages
        ]
        result = await self.supervisor.importer.import_transcript(
            provider_session_id=request.provider_session_id,
            messages=messages,
            worktree_path=request.worktree_path,
            repository=request.repository,
            worktree_name=request.worktree_name,
            base_ref=request.base_ref,
            owner=request.owner,
        )
        return pb.ImportTranscriptResponse(
            path=str(result.path),
            worktree_path=str(result.worktree_path),
            branch=result.branch,
            message_count=result.message_count,
            worktree_created=result.worktree_created,
        )

    @_rpc
    async def RemoveWorktree(
        self, request: pb.RemoveWorktreeRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveWorktreeResponse:
        branch, deleted = await self.supervisor.left_worktrees.remove(
            request.worktree_path,
            force=request.force,
            delete_branch=request.delete_branch,
            agent_session_id=request.agent_session_id,
            owner=request.owner,
            check_only=request.check_only,
            delete_branch_if_merged=request.delete_branch_if_merged,
        )
        return pb.RemoveWorktreeResponse(removed=not request.check_only, branch=branch, branch_deleted=deleted)

    @_rpc
    async def ForgetSession(
        self, request: pb.ForgetSessionRequest, context: grpc.aio.ServicerContext
    ) -> pb.ForgetSessionResponse:
        kept = await self.supervisor.left_worktrees.forget(request.agent_session_id, request.owner)
        return pb.ForgetSessionResponse(worktree_path=kept)

    @_rpc
    async def ListWorktrees(
        self, request: pb.ListWorktreesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWorktreesResponse:
        entries = await self.supervisor.left_worktrees.listed(request.repository, request.owner)
        return pb.ListWorktreesResponse(worktrees=[pb.Worktree(**e) for e in entries])

    @_rpc
    async def GetMachineInfo(
        self, request: pb.GetMachineInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.MachineInfo:
        return pb.MachineInfo(**await self.supervisor.machine_info())

    @_rpc
    async def GetDiff(self, request: pb.GetDiffRequest, context: grpc.aio.ServicerContext) -> pb.Diff:
        result, base_ref = await self.supervisor.git.diff(
            request.agent_session_id,
            request.owner,
            path=request.path,
            stat_only=request.stat_only,
            max_patch_bytes=request.max_patch_bytes,
        )
        return pb.Diff(
            base_ref=base_ref,
            base_commit=result.base_commit,
            head_commit=result.head_commit,
            patch=result.patch,
            truncated=result.truncated,
            files=[
                pb.DiffFile(
                    path=f.path,
                    old_path=f.old_path or "",
                    status=f.status,
                    additions=f.additions,
                    deletions=f.deletions,
                )
                for f in result.files
            ],
        )

    @_rpc
    async def Commit(self, request: pb.CommitRequest, context: grpc.aio.ServicerContext) -> pb.CommitResponse:
        commit = await self.supervisor.git.commit(
            request.agent_session_id, request.owner, request.message, request.author
        )
        return pb.CommitResponse(commit=commit)

    @_rpc
    async def Merge(self, request: pb.MergeRequest, context: grpc.aio.ServicerContext) -> pb.MergeResponse:
        result = await self.supervisor.git.merge(
            request.agent_session_id,
            request.owner,
            into=request.into,
            strategy=request.strategy,
            message=request.message,
        )
        return pb.MergeResponse(
            merged_commit=result.merged_commit, into=result.into, strategy=result.strategy, conflicts=result.conflicts
        )

    @_rpc
    async def Push(self, request: pb.PushRequest, context: grpc.aio.ServicerContext) -> pb.PushResponse:
        ref = await self.supervisor.git.push(
            request.agent_session_id, request.owner, remote=request.remote, branch=request.branch
        )
        return pb.PushResponse(remote=request.remote or "origin", ref=ref)

    @_rpc
    async def ListApprovals(
        self, request: pb.ListApprovalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListApprovalsResponse:
        recs = self.supervisor.approvals(request.agent_session_id, request.owner, request.status)
        return pb.ListApprovalsResponse(approvals=[approval_to_pb(r) for r in recs])

    @_rpc
    async def DecideApproval(self, request: pb.DecideApprovalRequest, context: grpc.aio.ServicerContext) -> pb.Approval:
        if request.decision not in ("allow", "deny"):
            raise InvalidArgument("decision", f'must be "allow" or "deny" (got {request.decision[:40]!r})')
        updated = _dict(request.updated_input) if request.HasField("updated_input") else None
        decision = Decision(
            allow=request.decision == "allow", message=request.message, updated_input=updated, remember=request.remember
        )
        rec = await self.supervisor.decide_approval(
            request.agent_session_id, request.approval_id, request.owner, decision
        )
        return approval_to_pb(rec)
