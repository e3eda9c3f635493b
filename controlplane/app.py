"""create_app(config): the FastAPI application, its lifespan (database, migrations, daemon pool, ingest)
and the cross-cutting pieces (body limit, error shapes, health, metrics)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy import func, select, text

from controlplane.api import (
    admin,
    approvals,
    events,
    exports,
    imports,
    launch,
    review,
    sessions,
    usage,
    worktrees,
)
from controlplane.api.openapi_doc import install_openapi
from controlplane.auth import require_admin
from controlplane.config import ControlPlaneConfig
from controlplane.daemons import DaemonCallError
from controlplane.db.models import AgentSession
from controlplane.errors import Conflict, InvalidField, NotFound, Unauthorized
from controlplane.logs import RequestIdMiddleware
from controlplane.metrics import CONTENT_TYPE_LATEST
from controlplane.services import Services
from controlplane.statuses import STATUSES

__all__ = ["BodyLimitMiddleware", "create_app"]

log = logging.getLogger("controlplane")


class BodyLimitMiddleware:
    """Answers 413 for request bodies over `limit` bytes (by Content-Length, or counted while streaming)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _reject(self, send: Any) -> None:
        body = b'{"detail":"request body too large (limit %d bytes)"}' % self.limit
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
            elif k == b"transfer-encoding":
                chunked = True
        # A request with neither header has no body (RFC 9112 §6.3): nothing to count, nothing to replay.
        if chunked:
            # No length given (chunked): read up to the limit first, then replay it to the app.
            chunks: list[bytes] = []
            seen = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                if seen > self.limit:
                    await self._reject(send)
                    return
                if not message.get("more_body", False):
                    break
            replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

            async def replay_receive() -> Any:
                return replay.pop() if replay else await receive()

            await self.app(scope, replay_receive, send)
            return
        await self.app(scope, receive, send)


def create_app(config: ControlPlaneConfig) -> FastAPI:
    """The control-plane app for `config`; start-up runs migrations and resumes event followers."""

    services = Services(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services:
            url = services.engine.url.render_as_string(hide_password=True)
            log.info("control plane ready (database %s)", url)
            yield

    # /docs and /redoc with their JavaScript and CSS served from here (fastapi-offline ships them), so
    # they work without internet.
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="Berth control plane",
        version="0.1.0",
        description="Run coding agents (Claude Code, Codex) on developers' machines. "
        "Every endpoint needs `Authorization: Bearer <token>` except /health (and /metrics when public).",
        lifespan=lifespan,
    )
    app.state.services = services

    # Domain errors → HTTP, here and nowhere else.
    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, err: NotFound) -> JSONResponse:
        return JSONResponse({"detail": err.message}, status_code=404)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_request: Request, err: Unauthorized) -> JSONResponse:
        return JSONResponse({"detail": err.message}, status_code=401)

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, err: Conflict) -> JSONResponse:
        return JSONResponse({"detail": err.message}, status_code=409)

    @app.exception_handler(InvalidField)
    async def _invalid(_request: Request, err: InvalidField) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": err.loc, "msg": err.message, "type": "value_error"}]}, status_code=422)

    @app.exception_handler(DaemonCallError)
    async def _daemon_error(_request: Request, err: DaemonCallError) -> JSONResponse:
        # A refusal naming a field is a 422 shaped like FastAPI's own; any other keeps its mapped status.
        if err.field and err.http_status == 422:
            detail: Any = [{"loc": ["body", err.field], "msg": err.message, "type": "value_error"}]
        else:
            detail = err.message
        # status/payload as well: the shape of the launch answers, so one reader serves both.
        body = {"detail": detail, "code": err.code, "status": "error", "payload": {"error": err.message}}
        return JSONResponse(body, status_code=err.http_status)

    @app.get("/health", tags=["ops"])
    async def health(request: Request) -> dict:
        """Liveness and database check (no token needed)."""
        async with services.sessionmaker() as db:
            await db.execute(text("SELECT 1"))
        return {"status": "ok"}

    async def _metrics(request: Request) -> Response:
        async with services.sessionmaker() as db:
            rows = dict(
                (await db.execute(select(AgentSession.status, func.count()).group_by(AgentSession.status))).all()
            )
        for status in STATUSES:
            services.metrics.sessions.labels(status=status).set(rows.get(status, 0))
        return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    if config.metrics_public:
        app.add_api_route("/metrics", _metrics, methods=["GET"], tags=["ops"], include_in_schema=False)
    else:
        from fastapi import Depends

        app.add_api_route(
            "/metrics",
            _metrics,
            methods=["GET"],
            tags=["ops"],
            include_in_schema=False,
            dependencies=[Depends(require_admin)],
        )

    # sessions first: its reads are the routes web apps poll, and routes are matched in order.
    for module in (sessions, launch, imports, exports, approvals, review, worktrees, usage, events, admin):
        app.include_router(module.router)
    install_openapi(app)
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Request-ID"],
        )
    app.add_middleware(RequestIdMiddleware)
    return app
