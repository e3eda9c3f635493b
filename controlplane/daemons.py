"""gRPC client pool for daemons: one channel per machine, deadlines on every call, errors mapped to HTTP here.

REST handlers and the event ingest reach daemons only through this module.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc
from google.protobuf import json_format, struct_pb2

from controlplane.metrics import Metrics

__all__ = ["DaemonCallError", "DaemonClient", "DaemonPool", "MachineTarget", "to_plain", "to_struct"]

# gRPC status → HTTP status (the one place this mapping lives).
_HTTP_FOR_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 502,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.CANCELLED: 502,
    grpc.StatusCode.UNIMPLEMENTED: 409,  # the machine's daemon predates this call: upgrading it is the fix
}
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.DOTALL)
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


class DaemonCallError(Exception):
    """A failed daemon call, already translated to an HTTP status and a readable message."""

    def __init__(self, http_status: int, message: str, *, code: str, method: str, field: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.code = code
        self.method = method
        self.field = field

    @classmethod
    def from_rpc_error(cls, method: str, err: grpc.aio.AioRpcError | grpc.RpcError) -> DaemonCallError:
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        details = (err.details() if hasattr(err, "details") else None) or str(code)
        http = _HTTP_FOR_CODE.get(code, 502)
        field = None
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            m = _FIELD_PREFIX.match(details)
            if m:
                field = m.group(1)
        if code == grpc.StatusCode.UNAVAILABLE:
            message = f"daemon unreachable: {details}"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"daemon did not answer {method} within the deadline"
        elif code == grpc.StatusCode.UNIMPLEMENTED:
            message = f"the machine's daemon is older than {method}: upgrade berth on that machine"
        elif http == 502:
            message = f"daemon error ({code.name}): {details}"
        else:
            message = details
        return cls(http, message, code=code.name, method=method, field=field)


def to_plain(value: Any) -> Any:
    """Struct-derived data with integral floats turned back into ints (pid 12.0 → 12)."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def to_struct(data: dict[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if data:
        s.update(data)
    return s


def message_to_dict(msg: Any) -> dict[str, Any]:
    return to_plain(json_format.MessageToDict(msg, preserving_proto_field_name=True))


@dataclass(frozen=True)
class MachineTarget:
    """How to reach one machine's daemon."""

    machine_id: str
    address: str
    tls_ca: str | None = None
    token: str | None = None


class DaemonClient:
    """Calls one daemon; every call carries a deadline and the machine's token when configured.

    Two transports, one interface: a channel the client dials (below), or the daemon's own dial-out
    tunnel passed as `channel` (the same stubs, deadlines, status codes and errors over it).

    A unix socket is local (its file mode guards it); every TCP address is dialed with TLS, verified
    against the machine's CA when one is set and the system's CAs otherwise, so a token never
    travels in clear text. There is no plaintext TCP.
    """

    def __init__(
        self, target: MachineTarget, *, rpc_deadline: float, metrics: Metrics | None = None, channel: Any = None
    ) -> None:
        self.target = target
        self.rpc_deadline = rpc_deadline
        self.metrics = metrics
        if channel is not None:  # a daemon's dial-out tunnel (controlplane/tunnel.py: TunnelChannel)
            self.channel = channel
        elif target.address.startswith("unix:"):
            self.channel = grpc.aio.insecure_channel(target.address, options=_CHANNEL_OPTIONS)
        else:
            roots = target.tls_ca.encode() if target.tls_ca else None  # None: the system's CAs
            creds = grpc.ssl_channel_credentials(root_certificates=roots)
            self.channel = grpc.aio.secure_channel(target.address, creds, options=_CHANNEL_OPTIONS)
        self.stub = daemon_pb2_grpc.DaemonServiceStub(self.channel)
        self._metadata = (("authorization", f"Bearer {target.token}"),) if target.token else None

    async def _unary(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return await getattr(self.stub, method)(
                request, timeout=timeout or self.rpc_deadline, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as err:
            if self.metrics:
                self.metrics.rpc_errors.labels(method=method, code=err.code().name).inc()
            raise DaemonCallError.from_rpc_error(method, err) from None

    async def launch_session(
        self, req: daemon_pb2.LaunchSessionRequest, deadline: float
    ) -> daemon_pb2.LaunchSessionResponse:
        return await self._unary("LaunchSession", req, deadline)

    async def import_transcript(
        self, req: daemon_pb2.ImportTranscriptRequest, deadline: float
    ) -> daemon_pb2.ImportTranscriptResponse:
        return await self._unary("ImportTranscript", req, deadline)

    async def send_message(self, session_id: str, content: str, message_id: str = "") -> daemon_pb2.SendMessageResponse:
        return await self._unary(
            "SendMessage",
            daemon_pb2.SendMessageRequest(agent_session_id=session_id, content=content, message_id=message_id),
        )

    async def interrupt_session(self, session_id: str) -> daemon_pb2.Session:
        return await self._unary("InterruptSession", daemon_pb2.SessionRequest(agent_session_id=session_id))

    async def pause_session(self, session_id: str) -> daemon_pb2.Session:
        return await self._unary("PauseSession", daemon_pb2.SessionRequest(agent_session_id=session_id))

    async def resume_session(self, session_id: str, prompt: str = "") -> daemon_pb2.Session:
        return await self._unary(
            "ResumeSession", daemon_pb2.ResumeSessionRequest(agent_session_id=session_id, prompt=prompt)
        )

    async def stop_session(self, session_id: str, grace_seconds: float = 0.0) -> daemon_pb2.Session:
        # Stopping waits out the daemon's SIGTERM grace, so allow that on top of the usual deadline.
        return await self._unary(
            "StopSession",
            daemon_pb2.StopSessionRequest(agent_session_id=session_id, grace_seconds=grace_seconds),
            self.rpc_deadline + max(grace_seconds, 10.0),
        )

    async def get_session(self, session_id: str) -> daemon_pb2.Session:
        return await self._unary("GetSession", daemon_pb2.SessionRequest(agent_session_id=session_id))

    async def remove_worktree(
        self,
        session_id: str,
        owner: str,
        *,
        force: bool,
        delete_branch: bool = False,
        check_only: bool = False,
        delete_branch_if_merged: bool = False,
    ) -> Any:
        """Remove the worktree of `owner`'s session (or, with check_only, say whether that is allowed)."""
        return await self._unary(
            "RemoveWorktree",
            daemon_pb2.RemoveWorktreeRequest(
                agent_session_id=session_id,
                owner=owner,
                force=force,
                delete_branch=delete_branch,
                check_only=check_only,
                delete_branch_if_merged=delete_branch_if_merged,
            ),
        )

    async def forget_session(self, session_id: str, owner: str) -> daemon_pb2.ForgetSessionResponse:
        """Make the daemon forget `owner`'s stopped session (its worktree stays theirs)."""
        return await self._unary(
            "ForgetSession", daemon_pb2.ForgetSessionRequest(agent_session_id=session_id, owner=owner)
        )

    async def list_worktrees(self, repository: str, owner: str) -> daemon_pb2.ListWorktreesResponse:
        """`owner`'s Berth worktrees of `repository` on the machine."""
        return await self._unary("ListWorktrees", daemon_pb2.ListWorktreesRequest(repository=repository, owner=owner))

    async def list_approvals(self, session_id: str, owner: str, status: str = "") -> daemon_pb2.ListApprovalsResponse:
        return await self._unary(
            "ListApprovals", daemon_pb2.ListApprovalsRequest(agent_session_id=session_id, owner=owner, status=status)
        )

    async def decide_approval(self, req: daemon_pb2.DecideApprovalRequest) -> daemon_pb2.Approval:
        return await self._unary("DecideApproval", req)

    async def get_diff(self, req: daemon_pb2.GetDiffRequest) -> daemon_pb2.Diff:
        return await self._unary("GetDiff", req, self.rpc_deadline + 60)

    async def commit(self, req: daemon_pb2.CommitRequest) -> daemon_pb2.CommitResponse:
        return await self._unary("Commit", req, self.rpc_deadline + 60)

    async def merge(self, req: daemon_pb2.MergeRequest) -> daemon_pb2.MergeResponse:
        return await self._unary("Merge", req, self.rpc_deadline + 60)

    async def push(self, req: daemon_pb2.PushRequest) -> daemon_pb2.PushResponse:
        # A push waits on the network: allow it time beyond the usual deadline.
        return await self._unary("Push", req, self.rpc_deadline + 120)

    async def machine_info(self) -> daemon_pb2.MachineInfo:
        return await self._unary("GetMachineInfo", daemon_pb2.GetMachineInfoRequest())

    async def stream_events(self, session_id: str, after_seq: int) -> AsyncIterator[daemon_pb2.Event]:
        """Stored events after `after_seq`, then live ones; no deadline (it follows), errors mapped."""
        call = self.stub.StreamEvents(
            daemon_pb2.StreamEventsRequest(agent_session_id=session_id, after_seq=after_seq),
            metadata=self._metadata,
        )
        try:
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:
                return
            if self.metrics:
                self.metrics.rpc_errors.labels(method="StreamEvents", code=err.code().name).inc()
            raise DaemonCallError.from_rpc_error("StreamEvents", err) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close(grace=None)


class DaemonPool:
    """One DaemonClient per machine; rebuilt when the machine's address, CA or token changes."""

    def __init__(self, *, rpc_deadline: float, metrics: Metrics | None = None) -> None:
        self.rpc_deadline = rpc_deadline
        self.metrics = metrics
        self._clients: dict[str, DaemonClient] = {}
        self._retiring: set[asyncio.Task] = set()  # closes of replaced clients, awaited by close()
        self._closed = False

    def client(self, target: MachineTarget, *, channel: Callable[[], Any] | None = None) -> DaemonClient:
        """The client of `target`'s machine (`channel()`: the transport to build one on, for a tunnel)."""
        if self._closed:
            raise DaemonCallError(503, "control plane is shutting down", code="UNAVAILABLE", method="-")
        existing = self._clients.get(target.machine_id)
        if existing is not None and existing.target == target:
            return existing
        if existing is not None:
            retiring = asyncio.get_running_loop().create_task(existing.close())
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
        client = DaemonClient(
            target, rpc_deadline=self.rpc_deadline, metrics=self.metrics, channel=channel() if channel else None
        )
        self._clients[target.machine_id] = client
        return client

    async def forget(self, machine_id: str) -> None:
        client = self._clients.pop(machine_id, None)
        if client is not None:
            await client.close()

    async def close(self) -> None:
        """Close every channel (idempotent)."""
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.close()
        await asyncio.gather(*self._retiring)
