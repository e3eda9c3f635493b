"""Caller authentication: unix-socket callers are trusted, TCP callers need the bearer token.

The aio interceptor API hands over only the method name and metadata, not the
peer, so `AuthInterceptor` wraps the method handler's behavior and decides per
call from `context.peer()` ("unix:…" for the unix socket). `wrap_handler` is the
general tool for that (the server's call observer uses it too).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

__all__ = ["OPEN_SERVICE_PREFIXES", "AuthInterceptor", "TokenCheck", "is_unix_peer", "wrap_handler"]

# Methods any caller may use without a token: load balancers and systemd probes
# check health before they could know a token.
OPEN_SERVICE_PREFIXES = ("/grpc.health.v1.Health/",)

Guard = Callable[[grpc.aio.ServicerContext], AbstractAsyncContextManager[Any]]


def is_unix_peer(peer: str) -> bool:
    """True when `peer` (from context.peer()) is a unix-socket connection."""
    return peer.startswith("unix:")


class TokenCheck:
    """Compares presented bearer tokens with the configured one, in constant time.

    Only a SHA-256 digest of the token is kept in memory.
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("listen.token: must not be empty")
        self._digest = hashlib.sha256(token.encode()).digest()

    def matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._digest)

    def authorized(self, metadata: Any) -> bool:
        """True when `metadata` carries `authorization: Bearer <token>` with the right token."""
        for key, value in metadata or ():
            if key.lower() != "authorization":
                continue
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            scheme, _, credential = value.strip().partition(" ")
            if scheme.lower() == "bearer" and self.matches(credential.strip()):
                return True
        return False


def _wrap_unary_response(behavior: Callable[..., Any], guard: Guard) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with guard(context):
            result = behavior(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result

    return wrapped


def _wrap_stream_response(behavior: Callable[..., Any], guard: Guard) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior) or inspect.isgeneratorfunction(behavior):
        is_async = inspect.isasyncgenfunction(behavior)

        async def wrapped_gen(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with guard(context):
                if is_async:
                    async for item in behavior(request, context):
                        yield item
                else:
                    for item in behavior(request, context):
                        yield item

        return wrapped_gen

    # A coroutine that writes its responses with context.write().
    async def wrapped_writer(request: Any, context: grpc.aio.ServicerContext) -> None:
        async with guard(context):
            result = behavior(request, context)
            if inspect.isawaitable(result):
                await result

    return wrapped_writer


def wrap_handler(handler: grpc.RpcMethodHandler, guard: Guard) -> grpc.RpcMethodHandler:
    """Return `handler` with its behavior run inside `async with guard(context)`.

    The guard may abort the call on entry (e.g. UNAUTHENTICATED) and sees the
    outcome on exit; it covers all four call shapes.
    """
    ser, de = handler.response_serializer, handler.request_deserializer
    if handler.request_streaming and handler.response_streaming:
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream_response(handler.stream_stream, guard), request_deserializer=de, response_serializer=ser
        )
    if handler.request_streaming:
        assert handler.stream_unary is not None
        return grpc.stream_unary_rpc_method_handler(
            _wrap_unary_response(handler.stream_unary, guard), request_deserializer=de, response_serializer=ser
        )
    if handler.response_streaming:
        assert handler.unary_stream is not None
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream_response(handler.unary_stream, guard), request_deserializer=de, response_serializer=ser
        )
    assert handler.unary_unary is not None
    return grpc.unary_unary_rpc_method_handler(
        _wrap_unary_response(handler.unary_unary, guard), request_deserializer=de, response_serializer=ser
    )


class _AuthGuard(AbstractAsyncContextManager[None]):
    __slots__ = ("_check", "_context")

    def __init__(self, check: TokenCheck | None, context: grpc.aio.ServicerContext) -> None:
        self._check = check
        self._context = context

    async def __aenter__(self) -> None:
        if is_unix_peer(self._context.peer()):
            return
        if self._check is None or not self._check.authorized(self._context.invocation_metadata()):
            await self._context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

    async def __aexit__(self, *exc: object) -> None:
        return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Rejects non-unix callers without `authorization: Bearer <token>` (health stays open).

    With `token=None` every non-unix caller is rejected.
    """

    def __init__(self, token: str | None, *, open_prefixes: tuple[str, ...] = OPEN_SERVICE_PREFIXES) -> None:
        self._check = TokenCheck(token) if token else None
        self._open = open_prefixes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self._open):
            return handler
        check = self._check
        return wrap_handler(handler, lambda context: _AuthGuard(check, context))
