"""The daemon's end of the dial-out tunnel: it connects to the control plane and serves DaemonService over it.

For a machine behind NAT the daemon opens the connection: one TLS gRPC stream (`TunnelService.Connect`,
proto/berth/tunnel/v1/tunnel.proto) authenticated by the machine credential. Each call the control plane
starts on it is relayed, as bytes, to the daemon's own unix socket, so the same server (its interceptors,
auth and metrics included) answers it, and the answer goes back with its status. The stream is held
open; when it breaks the daemon dials again with jittered exponential back-off (at most 30 s), and
keepalives notice a dead path within 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import grpc
from berth.tunnel.v1 import tunnel_pb2, tunnel_pb2_grpc

__all__ = ["TunnelDialer", "TunnelTarget"]

log = logging.getLogger("berth.daemon.tunnel")

_MAX_BACKOFF = 30.0
_FIRST_BACKOFF = 0.5
# A dead path (a laptop that changed networks) is noticed within 30 s: ping every 10 s, give up after 10 s.
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # The dialer's own back-off decides when to try again.
    ("grpc.enable_retries", 0),
]


@dataclass(frozen=True)
class TunnelTarget:
    """Where the control plane's tunnel listener is and how to prove who this machine is."""

    address: str  # host:port
    credential: str
    ca: bytes | None = None  # PEM roots for the listener's certificate; None: the system's
    plaintext: bool = False  # loopback only (make run): no TLS


class _Call:
    """One relayed call: its task, and the credit a server-streaming call may still spend."""

    def __init__(self, window: int) -> None:
        self.credit = window
        self.room = asyncio.Event()
        if window > 0:
            self.room.set()
        self.task: asyncio.Task[None] | None = None

    def add_credit(self, n: int) -> None:
        self.credit += n
        if self.credit > 0:
            self.room.set()

    async def spend(self) -> None:
        await self.room.wait()
        self.credit -= 1
        if self.credit <= 0:
            self.room.clear()


class TunnelDialer:
    """Keeps one tunnel to the control plane open and relays its calls to `local_socket`."""

    def __init__(self, target: TunnelTarget, local_socket: Path) -> None:
        self.target = target
        self.local_socket = local_socket
        self.connected = asyncio.Event()
        self.connections = 0  # tunnels opened so far (each reconnect counts)
        self.failures = 0  # attempts that ended in an error (refused, unreachable, broken)
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._local: grpc.aio.Channel | None = None
        self._closed = False

    def start(self) -> None:
        """Start dialing in the background (idempotent)."""
        if self._task is None and not self._closed:
            self._local = grpc.aio.insecure_channel(f"unix:{self.local_socket}")
            self._task = asyncio.get_running_loop().create_task(self._run(), name="berth-tunnel")

    async def close(self) -> None:
        """Close the tunnel and stop dialing (idempotent)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._local is not None:
            await self._local.close(grace=None)
            self._local = None

    async def _run(self) -> None:
        backoff = _FIRST_BACKOFF
        while not self._closed:
            try:
                served = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of one tunnel means: dial again
                served = False
                self.failures += 1
                self.last_error = _reason(exc)
                log.warning("tunnel to %s failed: %s", self.target.address, self.last_error)
            self.connected.clear()
            if served:
                backoff = _FIRST_BACKOFF  # it worked for a while: start the back-off over
            delay = random.uniform(backoff / 2, backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            await asyncio.sleep(delay)

    def _channel(self) -> grpc.aio.Channel:
        if self.target.plaintext:
            return grpc.aio.insecure_channel(self.target.address, options=_CHANNEL_OPTIONS)
        creds = grpc.ssl_channel_credentials(root_certificates=self.target.ca)
        return grpc.aio.secure_channel(self.target.address, creds, options=_CHANNEL_OPTIONS)

    async def _connect_once(self) -> bool:
        """One tunnel, from dialing to its end; True when the control plane accepted it."""
        outgoing: asyncio.Queue[tunnel_pb2.DaemonFrame | None] = asyncio.Queue()
        calls: dict[int, _Call] = {}

        async def frames():
            while True:
                frame = await outgoing.get()
                if frame is None:
                    return
                yield frame

        accepted = False
        async with self._channel() as channel:
            stub = tunnel_pb2_grpc.TunnelServiceStub(channel)
            stream = stub.Connect(frames(), metadata=(("authorization", f"Bearer {self.target.credential}"),))
            try:
                # The listener says it took the tunnel in its first metadata; a refusal has none, and
                # reading the stream then raises the refusal's status.
                if ("berth-tunnel", "accepted") not in tuple(await stream.initial_metadata() or ()):
                    async for _ in stream:
                        pass
                    raise ConnectionError("the control plane ended the tunnel before taking it")
                accepted = True
                self.connections += 1
                self.connected.set()
                log.info("tunnel to %s open", self.target.address)
                async for frame in stream:
                    self._dispatch(frame, calls, outgoing)
            finally:
                for call in calls.values():
                    if call.task is not None:
                        call.task.cancel()
                await asyncio.gather(*(c.task for c in calls.values() if c.task is not None), return_exceptions=True)
                outgoing.put_nowait(None)
                stream.cancel()
        log.info("tunnel to %s closed", self.target.address)
        return accepted

    def _dispatch(
        self,
        frame: tunnel_pb2.ControlFrame,
        calls: dict[int, _Call],
        outgoing: asyncio.Queue[tunnel_pb2.DaemonFrame | None],
    ) -> None:
        kind = frame.WhichOneof("kind")
        if kind == "start":
            if frame.call_id in calls:
                return  # a repeated id is the control plane's mistake: the first call keeps it
            call = calls[frame.call_id] = _Call(frame.start.window or 1)
            call.task = asyncio.get_running_loop().create_task(
                self._relay(frame.call_id, frame.start, call, calls, outgoing)
            )
        elif kind == "credit":
            found = calls.get(frame.call_id)
            if found is not None:
                found.add_credit(frame.credit)
        elif kind == "cancel":
            found = calls.get(frame.call_id)
            if found is not None and found.task is not None:
                found.task.cancel()

    async def _relay(
        self,
        call_id: int,
        start: tunnel_pb2.CallStart,
        call: _Call,
        calls: dict[int, _Call],
        outgoing: asyncio.Queue[tunnel_pb2.DaemonFrame | None],
    ) -> None:
        """Make the call on the local socket and send back its messages, then its status."""
        assert self._local is not None
        timeout = start.timeout_seconds or None
        code, details = grpc.StatusCode.OK, ""
        try:
            if start.server_streaming:
                local_stream = self._local.unary_stream(start.method, None, None)(start.request, timeout=timeout)
                try:
                    async for message in local_stream:
                        await call.spend()
                        outgoing.put_nowait(tunnel_pb2.DaemonFrame(call_id=call_id, message=message))
                finally:
                    local_stream.cancel()
            else:
                answer = await self._local.unary_unary(start.method, None, None)(start.request, timeout=timeout)
                outgoing.put_nowait(tunnel_pb2.DaemonFrame(call_id=call_id, message=answer))
        except grpc.aio.AioRpcError as err:
            code, details = err.code(), err.details() or ""
        except asyncio.CancelledError:
            code, details = grpc.StatusCode.CANCELLED, "cancelled by the control plane"
        finally:
            calls.pop(call_id, None)
            status = tunnel_pb2.CallStatus(code=code.value[0], details=details)
            outgoing.put_nowait(tunnel_pb2.DaemonFrame(call_id=call_id, status=status))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__
