"""Calls served inside the daemon's process: the handlers the gRPC server serves, without a socket.

Calls that arrive over the dial-out tunnel (daemon/tunnel.py) are not gRPC calls on one of the daemon's
listeners, yet they must be answered exactly as those are: the same servicer, the same interceptors
(the call observer's request id, log line and metrics, and its end of streams at shutdown), the same
status codes and details. `LocalCalls` holds the method handlers that `add_*Servicer_to_server`
registers and runs a call through the interceptors and the handler, with a `LocalContext` in place of
grpc's servicer context. Each call costs what the servicer costs, and nothing for a second hop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import grpc

__all__ = ["LocalCalls", "LocalContext"]


class _CallDetails(NamedTuple):
    """What interceptors see of a call (grpc.HandlerCallDetails)."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class LocalContext:
    """The part of grpc.aio.ServicerContext that Berth's servicer and interceptors use.

    `abort()` raises grpc.aio.AbortError after recording the code and details, as grpc does; the
    caller of the handler reads them back with `code()` and `details()`.
    """

    def __init__(self, peer: str, timeout: float | None = None) -> None:
        self._peer = peer
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        if code is grpc.StatusCode.OK:
            raise ValueError("abort() needs a code other than OK")
        self._code, self._details = code, details
        raise grpc.aio.AbortError()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    async def send_initial_metadata(self, metadata: Any) -> None:
        return None

    def set_trailing_metadata(self, metadata: Any) -> None:
        return None


class _Registry:
    """Stands in for a grpc server while `add_*Servicer_to_server` registers its methods."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        return None  # the same handlers arrive by name through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


Registration = Callable[[Any], None]


class LocalCalls:
    """Method handlers by full name, each found through `interceptors` as the gRPC server finds them.

    `registrations` are callables given a server-like object, e.g.
    `lambda server: add_DaemonServiceServicer_to_server(servicer, server)`.
    """

    def __init__(
        self, registrations: Sequence[Registration], interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
    ) -> None:
        registry = _Registry()
        for register in registrations:
            register(registry)
        self._handlers = registry.handlers
        self._interceptors = tuple(interceptors)

    async def handler(self, method: str) -> grpc.RpcMethodHandler | None:
        """The handler for `method`, wrapped by the interceptors; None when no service has it."""
        details = _CallDetails(method, ())

        def continuation_at(index: int) -> Callable[[Any], Awaitable[grpc.RpcMethodHandler | None]]:
            async def continuation(call_details: Any) -> grpc.RpcMethodHandler | None:
                if index == len(self._interceptors):
                    return self._handlers.get(call_details.method)
                following: Any = continuation_at(index + 1)  # grpc's stubs: it may not answer None
                return await self._interceptors[index].intercept_service(following, call_details)

            return continuation

        return await continuation_at(0)(details)
