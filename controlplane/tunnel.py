"""The control plane's end of the dial-out tunnel: daemons connect in, and calls to them go out over it.

`TunnelServer` listens for `TunnelService.Connect` (proto/berth/tunnel/v1/tunnel.proto) and keeps one
`TunnelConnection` per machine, found by the credential the daemon presents. A connection's `channel()`
is what `DaemonServiceStub` needs (`unary_unary` and `unary_stream`), so the daemon client calls a
tunneled daemon exactly as it calls one it dials: the same stubs, deadlines, status codes and errors
(`grpc.aio.AioRpcError`). A second daemon presenting the credential of a machine whose tunnel is open
is refused (ALREADY_EXISTS); the first keeps its tunnel.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from berth.tunnel.v1 import tunnel_pb2, tunnel_pb2_grpc

__all__ = ["TunnelChannel", "TunnelConnection", "TunnelServer"]

log = logging.getLogger("controlplane.tunnel")

# Server-streaming calls: messages the daemon may send ahead of what the caller has read.
_WINDOW = 64
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None)


@dataclass
class _Pending:
    """A call in flight: what the daemon sent for it, until its status."""

    inbox: asyncio.Queue[bytes | tuple[grpc.StatusCode, str]] = field(default_factory=asyncio.Queue)


class TunnelConnection:
    """One daemon's open tunnel: starts calls on it and routes the daemon's answers to them."""

    def __init__(self, machine_id: str) -> None:
        self.machine_id = machine_id
        self.connected_since = time.time()
        self.last_seen = self.connected_since
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._outgoing: asyncio.Queue[tunnel_pb2.ControlFrame | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._why_closed = "the tunnel is closed"

    def channel(self) -> TunnelChannel:
        """A channel whose calls travel over this tunnel (and fail UNAVAILABLE once it is closed)."""
        return TunnelChannel(lambda: self, self.machine_id)

    def close(self, why: str) -> None:
        """End the tunnel: every call in flight ends UNAVAILABLE with `why`."""
        if self.closed.is_set():
            return
        self._why_closed = why
        self.closed.set()
        self._outgoing.put_nowait(None)
        for pending in self._pending.values():
            pending.inbox.put_nowait((grpc.StatusCode.UNAVAILABLE, why))

    async def frames(self) -> AsyncIterator[tunnel_pb2.ControlFrame]:
        """The frames to send to the daemon, until close()."""
        while True:
            frame = await self._outgoing.get()
            if frame is None:
                return
            yield frame

    def receive(self, frame: tunnel_pb2.DaemonFrame) -> None:
        """A frame from the daemon: a message, the status of a call, or a unary call's answer (both)."""
        self.last_seen = time.time()
        pending = self._pending.get(frame.call_id)
        if pending is None:
            return  # a call the caller already gave up on
        kind = frame.WhichOneof("kind")
        if kind == "message":
            pending.inbox.put_nowait(frame.message)
        elif kind == "answer":
            self._pending.pop(frame.call_id, None)
            pending.inbox.put_nowait(frame.answer)
            pending.inbox.put_nowait((grpc.StatusCode.OK, ""))
        elif kind == "status":
            self._pending.pop(frame.call_id, None)
            pending.inbox.put_nowait((_CODES.get(frame.status.code, grpc.StatusCode.UNKNOWN), frame.status.details))

    def _start(self, method: str, request: bytes, *, streaming: bool, timeout: float | None) -> tuple[int, _Pending]:
        if self.closed.is_set():
            raise _rpc_error(grpc.StatusCode.UNAVAILABLE, self._why_closed)
        call_id = next(self._ids)
        pending = self._pending[call_id] = _Pending()
        start = tunnel_pb2.CallStart(
            method=method,
            server_streaming=streaming,
            request=request,
            timeout_seconds=timeout or 0.0,
            window=_WINDOW if streaming else 0,
        )
        self._outgoing.put_nowait(tunnel_pb2.ControlFrame(call_id=call_id, start=start))
        return call_id, pending

    def _cancel(self, call_id: int) -> None:
        if self._pending.pop(call_id, None) is not None and not self.closed.is_set():
            self._outgoing.put_nowait(tunnel_pb2.ControlFrame(call_id=call_id, cancel=True))

    def _credit(self, call_id: int, n: int) -> None:
        if call_id in self._pending and not self.closed.is_set():
            self._outgoing.put_nowait(tunnel_pb2.ControlFrame(call_id=call_id, credit=n))

    async def unary(self, method: str, request: bytes, timeout: float | None) -> bytes:
        """One unary call over the tunnel: the response's bytes, or AioRpcError."""
        call_id, pending = self._start(method, request, streaming=False, timeout=timeout)
        answer: bytes | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    item = await pending.inbox.get()
                    if isinstance(item, bytes):
                        answer = item
                        continue
                    code, details = item
                    if code != grpc.StatusCode.OK:
                        raise _rpc_error(code, details)
                    if answer is None:
                        raise _rpc_error(grpc.StatusCode.INTERNAL, "the daemon answered without a message")
                    return answer
        except TimeoutError:
            self._cancel(call_id)
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except asyncio.CancelledError:
            self._cancel(call_id)
            raise

    def stream(self, method: str, request: bytes, timeout: float | None) -> _StreamCall:
        """One server-streaming call over the tunnel (iterate it; cancel() ends it)."""
        call_id, pending = self._start(method, request, streaming=True, timeout=timeout)
        return _StreamCall(self, call_id, pending, timeout)


class _UnaryUnary:
    def __init__(self, channel: TunnelChannel, method: str, serialize: Any, deserialize: Any) -> None:
        self._channel, self._method = channel, method
        self._serialize, self._deserialize = serialize, deserialize

    async def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any) -> Any:
        data = await self._channel.current().unary(self._method, self._serialize(request), timeout)
        return self._deserialize(data)


class _StreamCall:
    """What a server-streaming call returns: iterate it for the responses' bytes; cancel() ends it.

    As with grpc.aio, a status other than OK ends the iteration with AioRpcError."""

    def __init__(self, connection: TunnelConnection, call_id: int, pending: _Pending, timeout: float | None) -> None:
        self._connection, self._call_id, self._pending = connection, call_id, pending
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._unacknowledged = 0
        self._done = False
        self.deserialize: Any = bytes

    def __aiter__(self) -> _StreamCall:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        try:
            remaining = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
            item = await asyncio.wait_for(self._pending.inbox.get(), remaining)
        except TimeoutError:
            self.cancel()
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except asyncio.CancelledError:
            self.cancel()
            raise
        if isinstance(item, bytes):
            self._unacknowledged += 1
            if self._unacknowledged >= _WINDOW // 2:
                self._connection._credit(self._call_id, self._unacknowledged)
                self._unacknowledged = 0
            return self.deserialize(item)
        self._done = True
        code, details = item
        if code != grpc.StatusCode.OK:
            raise _rpc_error(code, details)
        raise StopAsyncIteration

    def cancel(self) -> bool:
        """End the call on the daemon; a reader waiting on it gets CANCELLED."""
        if self._done:
            return False
        self._done = True
        self._connection._cancel(self._call_id)
        self._pending.inbox.put_nowait((grpc.StatusCode.CANCELLED, "Locally cancelled by application!"))
        return True


class _UnaryStream:
    def __init__(self, channel: TunnelChannel, method: str, serialize: Any, deserialize: Any) -> None:
        self._channel, self._method = channel, method
        self._serialize, self._deserialize = serialize, deserialize

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> _StreamCall | _FailedCall:
        try:
            call = self._channel.current().stream(self._method, self._serialize(request), timeout)
        except grpc.aio.AioRpcError as err:
            return _FailedCall(err)  # as with grpc.aio, the error comes when the call is read
        call.deserialize = self._deserialize
        return call


class _FailedCall:
    """A server-streaming call that could not start: reading it raises why."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self._error = error

    def __aiter__(self) -> _FailedCall:
        return self

    async def __anext__(self) -> Any:
        raise self._error

    def cancel(self) -> bool:
        return False


class TunnelChannel:
    """The part of grpc.aio.Channel that generated stubs use, over a tunnel (unary and server-streaming).

    `connection()` gives the tunnel to use at each call (None: the machine is offline → UNAVAILABLE)."""

    def __init__(self, connection: Callable[[], TunnelConnection | None], machine_id: str) -> None:
        self._connection = connection
        self.machine_id = machine_id

    def current(self) -> TunnelConnection:
        found = self._connection()
        if found is None:
            raise _rpc_error(grpc.StatusCode.UNAVAILABLE, f"machine {self.machine_id} has no open tunnel")
        return found

    def unary_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any):
        return _UnaryUnary(self, method, request_serializer or bytes, response_deserializer or bytes)

    def unary_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None, **_: Any):
        return _UnaryStream(self, method, request_serializer or bytes, response_deserializer or bytes)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any):
        raise NotImplementedError("client-streaming calls do not go over the tunnel")

    def stream_stream(self, method: str, *args: Any, **kwargs: Any):
        raise NotImplementedError("bidirectional calls do not go over the tunnel")

    async def close(self, grace: float | None = None) -> None:
        """The tunnel belongs to its daemon's connection; closing a channel on it closes nothing."""


class _Servicer(tunnel_pb2_grpc.TunnelServiceServicer):
    def __init__(self, server: TunnelServer) -> None:
        self._server = server

    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:  # noqa: N802
        token = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value[len("Bearer ") :].strip()
        machine_id = await self._server.authenticate(token) if token else None
        if machine_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked machine credential")
            return
        connection = self._server._register(machine_id)
        if connection is None:
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"machine {machine_id} is already connected (the same credential twice?)",
            )
            return
        await context.send_initial_metadata((("berth-tunnel", "accepted"),))

        async def read() -> None:
            try:
                async for frame in request_iterator:
                    connection.receive(frame)
            finally:
                connection.close("the daemon's tunnel closed")

        reader = asyncio.get_running_loop().create_task(read())
        try:
            async for frame in connection.frames():
                yield frame
        finally:
            connection.close("the tunnel closed")
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._server._unregister(connection)


class TunnelServer:
    """Accepts daemons' tunnels on `address` and keeps the current one of each machine.

    `authenticate(credential)` gives the machine id the credential belongs to, or None.
    """

    def __init__(
        self,
        address: str,
        authenticate: Callable[[str], Awaitable[str | None]],
        *,
        tls: tuple[bytes, bytes] | None = None,  # (key PEM, certificate PEM); None: loopback plaintext
        on_change: Callable[[TunnelConnection, bool], Awaitable[None]] | None = None,
    ) -> None:
        host = address.rsplit(":", 1)[0].strip("[]")
        if tls is None and host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("tunnel.listen: plaintext is allowed on loopback only; set the TLS certificate and key")
        self.address = address
        self.authenticate = authenticate
        self._tls = tls
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self._connections: dict[str, TunnelConnection] = {}
        self._changed = asyncio.Condition()
        self._on_change = on_change  # (connection, open): a tunnel opened or closed
        self._hooks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ]
        )
        tunnel_pb2_grpc.add_TunnelServiceServicer_to_server(_Servicer(self), server)
        if self._tls is None:
            self.port = server.add_insecure_port(self.address)
        else:
            self.port = server.add_secure_port(self.address, grpc.ssl_server_credentials([self._tls]))
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Close every tunnel and stop listening (idempotent)."""
        for connection in list(self._connections.values()):
            connection.close("the control plane is stopping")
        if self._server is not None:
            await self._server.stop(grace=1)
            self._server = None
        if self._hooks:
            await asyncio.gather(*list(self._hooks), return_exceptions=True)

    def connection(self, machine_id: str) -> TunnelConnection | None:
        """The machine's open tunnel, if it has one."""
        found = self._connections.get(machine_id)
        return found if found is not None and not found.closed.is_set() else None

    async def wait_connected(self, machine_id: str, *, timeout: float, newer_than: TunnelConnection | None = None):
        """The machine's open tunnel, waiting up to `timeout` seconds for one (other than `newer_than`)."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                found = self.connection(machine_id)
                if found is not None and found is not newer_than:
                    return found
                await self._changed.wait()

    def revoke(self, machine_id: str) -> None:
        """Close the machine's tunnel now (its credential is refused from here on by `authenticate`)."""
        found = self._connections.get(machine_id)
        if found is not None:
            found.close(f"machine {machine_id} was revoked")

    def _register(self, machine_id: str) -> TunnelConnection | None:
        """The new tunnel of `machine_id`, or None while it still has an open one (a second daemon with
        the same credential is refused; a daemon whose old tunnel died is let in once keepalives end it)."""
        if self.connection(machine_id) is not None:
            log.warning("machine %s tried a second tunnel while one is open: refused", machine_id)
            return None
        connection = self._connections[machine_id] = TunnelConnection(machine_id)
        log.info("tunnel of machine %s open", machine_id)
        self._spawn(self._notify(connection, True))
        return connection

    def _unregister(self, connection: TunnelConnection) -> None:
        if self._connections.get(connection.machine_id) is connection:
            del self._connections[connection.machine_id]
            log.info("tunnel of machine %s closed", connection.machine_id)
            self._spawn(self._notify(connection, False))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)

    async def _notify(self, connection: TunnelConnection, is_open: bool) -> None:
        if self._on_change is not None:
            try:
                await self._on_change(connection, is_open)
            except Exception:
                log.exception("recording the tunnel of machine %s failed", connection.machine_id)
        async with self._changed:
            self._changed.notify_all()

    def channel(self, machine_id: str) -> TunnelChannel:
        """A channel to `machine_id` over whichever tunnel it has open at each call (UNAVAILABLE: none)."""
        return TunnelChannel(lambda: self.connection(machine_id), machine_id)
