"""An in-process DaemonService test double on a unix socket, for edge cases the real daemon cannot be
made to show on demand (unreachable, too slow, a given gRPC error, a dropped stream). The end-to-end
proofs use the real daemon (test_e2e_*.py).

The double keeps a gap-free event log per session and follows it in StreamEvents like the daemon does.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc

__all__ = ["FakeDaemon", "serve_fake_daemon"]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeDaemon(daemon_pb2_grpc.DaemonServiceServicer):
    """Scriptable daemon: set `launch_delay`, `fail[method] = (code, message)`; inspect `calls`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, tuple[grpc.StatusCode, str]] = {}
        self.launch_delay = 0.0
        # When set, LaunchSession acknowledges {status: "error", payload: launch_ack_error}.
        self.launch_ack_error: dict[str, Any] | None = None
        self.sessions: dict[str, daemon_pb2.Session] = {}
        self.events: dict[str, list[daemon_pb2.Event]] = {}
        self.changed = asyncio.Condition()
        self.streams_open = 0
        # Cleared: event streams open but send nothing until it is set again.
        self.streams_flow = asyncio.Event()
        self.streams_flow.set()
        # False: pause/resume/stop change the status without writing a status event.
        self.status_events = True

    async def _check(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        self.calls.append((method, request))
        if method in self.fail:
            code, msg = self.fail[method]
            await context.abort(code, msg)

    async def emit(self, sid: str, role: str, text: str, *, status: str = "", ctype: str = "text") -> None:
        """Append one event to a session's log and wake followers."""
        async with self.changed:
            log = self.events.setdefault(sid, [])
            ev = daemon_pb2.Event(agent_session_id=sid, seq=len(log) + 1, role=role, created_at=_now(), status=status)
            ev.content.type = ctype
            ev.content.text = text
            log.append(ev)
            if sid in self.sessions:
                self.sessions[sid].last_seq = ev.seq
            if status and sid in self.sessions:
                self.sessions[sid].status = status
            self.changed.notify_all()

    async def LaunchSession(self, request, context):
        await self._check("LaunchSession", request, context)
        if self.launch_delay:
            await asyncio.sleep(self.launch_delay)
        if self.launch_ack_error is not None:
            resp = daemon_pb2.LaunchSessionResponse(status="error")
            resp.payload.update(self.launch_ack_error)
            return resp
        sid = request.agent_session_id
        wt = f"/tmp/fake-worktrees/{request.worktree_name or sid}"
        provider = request.session_settings.code.default_provider or "claude_code"
        s = daemon_pb2.Session(
            agent_session_id=sid,
            workspace_id=request.workspace_id,
            provider=provider,
            model="fake-model",
            status="active",
            repository=request.repository,
            worktree_path=wt,
            branch=request.worktree_name or sid,
            provider_session_id=request.resume_session_id or str(uuid.uuid5(uuid.NAMESPACE_URL, sid)),
        )
        self.sessions[sid] = s
        await self.emit(sid, "system", "session started", status="active")
        if request.initial_prompt:
            await self.emit(sid, "user", request.initial_prompt)
            await self.emit(sid, "assistant", f"echo: {request.initial_prompt}")
        resp = daemon_pb2.LaunchSessionResponse(status="ok", session=s)
        resp.payload.update(
            {
                "agent_session_id": sid,
                "worktree_path": wt,
                "branch": s.branch,
                "provider": provider,
                "model": "fake-model",
                "pid": 4242,
                "session_status": "active",
                "provider_session_id": s.provider_session_id,
                "reused": False,
            }
        )
        return resp

    async def SendMessage(self, request, context):
        await self._check("SendMessage", request, context)
        s = self.sessions.get(request.agent_session_id)
        if s is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no session {request.agent_session_id}")
        if s.status != "active":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"session is {s.status}")
        await self.emit(s.agent_session_id, "user", request.content)
        await self.emit(s.agent_session_id, "assistant", f"echo: {request.content}")
        return daemon_pb2.SendMessageResponse(message_id=request.message_id or "m-1", status="sent", timestamp=_now())

    async def _set(self, method: str, request, context, status: str):
        await self._check(method, request, context)
        s = self.sessions.get(request.agent_session_id)
        if s is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no session {request.agent_session_id}")
        if self.status_events:
            await self.emit(s.agent_session_id, "system", status, status=status)
        else:
            s.status = status
        return s

    async def InterruptSession(self, request, context):
        await self._check("InterruptSession", request, context)
        s = self.sessions.get(request.agent_session_id)
        if s is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no session {request.agent_session_id}")
        await self.emit(s.agent_session_id, "system", "interrupted", ctype="system")
        return s

    async def PauseSession(self, request, context):
        return await self._set("PauseSession", request, context, "paused")

    async def ResumeSession(self, request, context):
        return await self._set("ResumeSession", request, context, "active")

    async def StopSession(self, request, context):
        return await self._set("StopSession", request, context, "completed")

    async def GetSession(self, request, context):
        await self._check("GetSession", request, context)
        return self.sessions[request.agent_session_id]

    async def StreamEvents(self, request, context):
        await self._check("StreamEvents", request, context)
        sid, after = request.agent_session_id, request.after_seq
        self.streams_open += 1
        try:
            await self.streams_flow.wait()
            while True:
                async with self.changed:
                    await self.changed.wait_for(lambda after=after: len(self.events.get(sid, [])) > after)
                    batch = self.events[sid][after:]
                for ev in batch:
                    yield ev
                    after = ev.seq
        finally:
            self.streams_open -= 1

    async def ImportTranscript(self, request, context):
        await self._check("ImportTranscript", request, context)
        return daemon_pb2.ImportTranscriptResponse(
            path=f"/tmp/fake/{request.provider_session_id}.jsonl",
            worktree_path=f"/tmp/fake-worktrees/{request.worktree_name}",
            branch=request.worktree_name,
            message_count=len(request.messages),
            worktree_created=True,
        )

    async def RemoveWorktree(self, request, context):
        await self._check("RemoveWorktree", request, context)
        return daemon_pb2.RemoveWorktreeResponse(removed=True, branch="b")

    async def ForgetSession(self, request, context):
        await self._check("ForgetSession", request, context)
        self.sessions.pop(request.agent_session_id, None)
        return daemon_pb2.ForgetSessionResponse()

    async def ListSessions(self, request, context):
        await self._check("ListSessions", request, context)
        return daemon_pb2.ListSessionsResponse(sessions=list(self.sessions.values()))

    async def ListWorktrees(self, request, context):
        await self._check("ListWorktrees", request, context)
        return daemon_pb2.ListWorktreesResponse(
            worktrees=[
                daemon_pb2.Worktree(
                    path="/srv/worktrees/stray", branch="stray", agent_session_id="session-stray", forgotten=True
                )
            ]
        )

    async def ListApprovals(self, request, context):
        await self._check("ListApprovals", request, context)
        return daemon_pb2.ListApprovalsResponse()

    async def DecideApproval(self, request, context):
        await self._check("DecideApproval", request, context)
        await context.abort(grpc.StatusCode.NOT_FOUND, f"approval {request.approval_id} not found")

    async def GetDiff(self, request, context):
        await self._check("GetDiff", request, context)
        return daemon_pb2.Diff(base_commit="0" * 40, head_commit="0" * 40)

    async def Commit(self, request, context):
        await self._check("Commit", request, context)
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nothing to commit: the worktree has no changes")

    async def Merge(self, request, context):
        await self._check("Merge", request, context)
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nothing to merge")

    async def Push(self, request, context):
        await self._check("Push", request, context)
        await context.abort(grpc.StatusCode.NOT_FOUND, "remote: the repository has no remote")

    async def GetMachineInfo(self, request, context):
        await self._check("GetMachineInfo", request, context)
        return daemon_pb2.MachineInfo(hostname="fake", daemon_version="0-fake")

    def called(self, method: str) -> list[Any]:
        return [req for m, req in self.calls if m == method]


@contextlib.asynccontextmanager
async def serve_fake_daemon(fake: FakeDaemon | None = None) -> AsyncIterator[tuple[FakeDaemon, str]]:
    """Serve a FakeDaemon on a fresh unix socket; yields (fake, "unix:/path")."""
    fake = fake or FakeDaemon()
    sock_dir = Path(tempfile.mkdtemp(prefix="berth-fake-", dir="/tmp"))
    address = f"unix:{sock_dir / 'd.sock'}"
    server = grpc.aio.server()
    daemon_pb2_grpc.add_DaemonServiceServicer_to_server(fake, server)
    server.add_insecure_port(address)
    await server.start()
    try:
        yield fake, address
    finally:
        await server.stop(0)
        shutil.rmtree(sock_dir, ignore_errors=True)
