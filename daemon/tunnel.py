"""The daemon's end of the dial-out tunnel: it connects to the control plane and serves DaemonService over it.

For a machine behind NAT the daemon opens the connection: one TLS gRPC stream (`TunnelService.Connect`,
proto/berth/tunnel/v1/tunnel.proto) authenticated by the machine credential. Each call the control plane
starts on it is served in this process by the same handlers and interceptors as the daemon's listeners
(`LocalCalls`), and the answer goes back with its status. The stream is held open; when it breaks the
daemon dials again with jittered exponential back-off (at most 30 s), and keepalives notice a dead path
within 30 s.

Calls over the tunnel need no bearer token: the daemon verified the control plane's certificate before
it showed its credential, and only the control plane it enrolled with can start calls on the stream.
Their peer reads `tunnel:<address>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import grpc
from berth.tunnel.v1 import tunnel_pb2, tunnel_pb2_grpc

from daemon.local_calls import LocalCalls, LocalContext

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
    """Keeps one tunnel to the control plane open and serves its calls with `calls`."""

    def __init__(self, target: TunnelTarget, calls: LocalCalls) -> None:
        self.target = target
        self.calls = calls
        self.peer = f"tunnel:{target.address}"
        self.connected = asyncio.Event()
        self.connections = 0  # tunnels opened so far (each reconnect counts)
        self.failures = 0  # attempts that ended in an error (refused, unreachable, broken)
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start dialing in the background (idempotent)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="berth-tunnel")

    async def close(self) -> None:
        """Close the tunnel and stop dialing (idempotent)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

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
                self._serve(frame.call_id, frame.start, call, calls, outgoing)
            )
        elif kind == "credit":
            found = calls.get(frame.call_id)
            if found is not None:
                found.add_credit(frame.credit)
        elif kind == "cancel":
            found = calls.get(frame.call_id)
            if found is not None and found.task is not None:
                found.task.cancel()

    async def _serve(
        self,
        call_id: int,
        start: tunnel_pb2.CallStart,
        call: _Call,
        calls: dict[int, _Call],
        outgoing: asyncio.Queue[tunnel_pb2.DaemonFrame | None],
    ) -> None:
        """Serve the call here and send back its messages, then its status (a unary answer: both at once)."""
        timeout = start.timeout_seconds or None
        context = LocalContext(self.peer, timeout)
        code, details = grpc.StatusCode.OK, ""
        try:
            # Any: grpc's stubs type the behaviors for grpc's own context, not for LocalContext.
            handler: Any = await self.calls.handler(start.method)
            if handler is None:
                code, details = grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {start.method}"
            elif handler.request_streaming or handler.response_streaming != start.server_streaming:
                code, details = grpc.StatusCode.UNIMPLEMENTED, f"{start.method}: not a call of this shape"
            else:
                try:
                    request = handler.request_deserializer(start.request)
                except Exception:  # noqa: BLE001 - whatever the parser raises, the request is unreadable
                    code, details = grpc.StatusCode.INTERNAL, "the request could not be parsed"
                else:
                    async with asyncio.timeout(timeout):
                        if start.server_streaming:
                            async with contextlib.aclosing(handler.unary_stream(request, context)) as messages:
                                async for message in messages:
                                    await call.spend()
                                    data = handler.response_serializer(message)
                                    outgoing.put_nowait(tunnel_pb2.DaemonFrame(call_id=call_id, message=data))
                        else:
                            answer = handler.response_serializer(await handler.unary_unary(request, context))
                            if context.code() in (None, grpc.StatusCode.OK):
                                calls.pop(call_id, None)
                                outgoing.put_nowait(tunnel_pb2.DaemonFrame(call_id=call_id, answer=answer))
                                return
                    code, details = context.code() or grpc.StatusCode.OK, context.details()
        except grpc.aio.AbortError:
            code, details = context.code() or grpc.StatusCode.UNKNOWN, context.details()
        except TimeoutError:
            code, details = grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
        except asyncio.CancelledError:
            code, details = grpc.StatusCode.CANCELLED, "cancelled by the control plane"
        except Exception as exc:
            if context.code() not in (None, grpc.StatusCode.OK):
                code, details = context.code() or grpc.StatusCode.UNKNOWN, context.details()  # as grpc does
            else:
                log.error("tunneled call %s failed", start.method, exc_info=exc)
                code, details = grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc).__name__} in the daemon"
        calls.pop(call_id, None)
        status = tunnel_pb2.CallStatus(code=code.value[0], details=details)
        outgoing.put_nowait(tunnel_pb2.DaemonFrame(call_id=call_id, status=status))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__
