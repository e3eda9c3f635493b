"""POST /api/v1/user-sessions/import-claude-session — import a Claude CLI conversation (seed document).

Two forms: the seed's JSON document, or (an addition) Claude Code's own session file as it is, sent as
``Content-Type: application/x-ndjson`` with the document's other fields as query parameters. The file
is read into the document here, so both forms take the same path from validation on.

All rows (user session, agent session, every message) are written in one transaction. The messages are
inserted with one executemany; on SQLite their values are bound here (JSON text by orjson, stored datetime,
each distinct timestamp parsed once) and passed straight to the driver, since per-row ORM/Core work
would cost more than SQLite itself.
"""

from __future__ import annotations

import contextlib
import gc
import json
import secrets
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.types import Message as ASGIMessage

from claude_sessions import SessionFileError, read_session_file
from controlplane.api.common import conflict, owned_workspace
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.db.models import AgentSession, Message, UserSession, new_id, utcnow
from controlplane.errors import InvalidField
from controlplane.ingest import parse_time
from controlplane.schemas import (
    ClaudeCodeFileReport,
    ImportableMessage,
    ImportClaudeSessionRequest,
    ImportClaudeSessionResponse,
)
from controlplane.services import get_services

__all__ = ["router"]

NDJSON = "application/x-ndjson"
_FILE_QUERY = ("workspace_id", "claude_session_id", "worktree_name", "session_name")
_REPORT_KEY = "claude_code_file"


def _document_from_file(raw: bytes, query: dict[str, str]) -> tuple[dict[str, Any], ClaudeCodeFileReport]:
    """The seed's JSON document for a Claude Code session file and the query's fields; 422s name the line
    or the parameter."""
    unknown = sorted(set(query) - set(_FILE_QUERY))
    if unknown:
        raise InvalidField(
            unknown[0], f"is not a parameter of this form (it takes {', '.join(_FILE_QUERY)})", where="query"
        )
    if not query.get("workspace_id"):
        raise InvalidField("workspace_id", "is required with a Claude Code session file", where="query")
    try:
        parsed = read_session_file(raw.decode("utf-8").splitlines())
    except UnicodeDecodeError as exc:
        raise InvalidField([], f"a session file is UTF-8 text (byte {exc.start} is not)") from None
    except SessionFileError as exc:
        raise InvalidField([exc.where], exc.message) from None
    session_id = query.get("claude_session_id") or parsed.session_id
    if not session_id:
        raise InvalidField("claude_session_id", "the file names no sessionId: give it as a parameter", where="query")
    document: dict[str, Any] = {
        "workspace_id": query["workspace_id"],
        "claude_session_id": session_id,
        "messages": parsed.messages,
    }
    for name in ("worktree_name", "session_name"):
        if query.get(name):
            document[name] = query[name]
    report = ClaudeCodeFileReport(
        lines_skipped=dict(parsed.skipped), blocks_kept_as_metadata=dict(parsed.kept_as_metadata)
    )
    return document, report


class _ImportRoute(StrictJSONRoute):
    """A StrictJSONRoute that also takes a Claude Code session file (application/x-ndjson)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            if request.headers.get("content-type", "").split(";")[0].strip().lower() != NDJSON:
                return await handler(request)
            document, report = _document_from_file(await request.body(), dict(request.query_params))
            body = orjson.dumps(document)
            headers = [(k, v) for k, v in request.scope["headers"] if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            scope = {**request.scope, "headers": headers, "query_string": b""}
            scope["state"] = {**request.scope.get("state", {}), _REPORT_KEY: report}
            sent = False

            async def receive() -> ASGIMessage:
                nonlocal sent
                if sent:
                    return await request.receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await handler(Request(scope, receive))

        return handle


_FILE_FORM_DOC = {
    "parameters": [
        {
            "name": name,
            "in": "query",
            "required": name == "workspace_id",
            "schema": {"type": "string"},
            "description": f"With `Content-Type: {NDJSON}` only: the document's `{name}`"
            + (" (default: the file's sessionId)" if name == "claude_session_id" else ""),
        }
        for name in _FILE_QUERY
    ],
    "requestBody": {
        "content": {
            NDJSON: {
                "schema": {
                    "type": "string",
                    "description": "A Claude Code session file (~/.claude/projects/<dir>/<session id>.jsonl) as it is",
                },
                "example": '{"type":"user","uuid":"…","parentUuid":null,"sessionId":"…","message":'
                '{"role":"user","content":"hello"},"timestamp":"2026-12-01T09:00:00.000Z"}\n',
            }
        }
    },
}

router = APIRouter(tags=["import"], route_class=_ImportRoute)

_COLUMNS = ("id", "agent_session_id", "seq", "role", "content", "metadata", "status", "created_at")


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a synchronous stretch (no await inside, so nothing else
    runs meanwhile) allocates tens of thousands of objects: each collection it triggers would traverse
    the whole heap. The objects are reference-counted as usual; collection resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _json_text(value: Any) -> str:
    """JSON text of `value` (orjson, about ten times faster than json.dumps here)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (integers beyond 64 bits): the standard library takes it
        return json.dumps(value)


def _rows(agent_session_id: str, messages: list[ImportableMessage]) -> list[tuple[Any, ...]]:
    """Message rows in _COLUMNS order (Python values)."""
    times: dict[str | None, datetime] = {}
    rows = []
    # The same ids as new_id("msg") gives, from one read of the random source.
    random_hex = secrets.token_hex(8 * len(messages))
    for i, m in enumerate(messages):
        meta = dict(m.get("metadata") or {})
        message_id = m.get("message_id")
        if message_id:
            meta["import_message_id"] = message_id
        content: dict[str, Any] = {"type": "text"}
        content.update((k, v) for k, v in m["content"].items() if v is not None)
        at = m.get("created_at")
        created = times.get(at)
        if created is None:
            created = times[at] = parse_time(at)
        rows.append(
            (f"msg-{random_hex[16 * i : 16 * i + 16]}", agent_session_id, None, m["role"], content, meta, None, created)
        )
    return rows


async def _insert_messages(conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
    """One executemany of `rows` in the connection's transaction."""
    table = cast(Table, Message.__table__)
    dialect = conn.dialect
    if dialect.name != "sqlite":
        await conn.execute(insert(table), [dict(zip(_COLUMNS, r, strict=True)) for r in rows])
        return
    # Stored datetimes exactly as SQLAlchemy binds them (the column's own processor); JSON as text.
    to_stored_time = table.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    stored_times: dict[datetime, Any] = {}
    bound = []
    with _no_gc_pauses():
        for r in rows:
            t = stored_times.get(r[7])
            if t is None:
                t = stored_times[r[7]] = to_stored_time(r[7]) if to_stored_time else r[7]
            bound.append((r[0], r[1], r[2], r[3], _json_text(r[4]), _json_text(r[5]), r[6], t))
    sql = f"INSERT INTO {table.name} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    await conn.exec_driver_sql(sql, bound)


def _check_launchable(messages: list[ImportableMessage]) -> None:
    """422 naming the message for what a later launch could not turn into a Claude Code session."""
    for i, m in enumerate(messages):
        content = m["content"]
        if content.get("type") == "tool_use" and not content.get("name"):
            raise InvalidField(["messages", i, "content", "name"], "a tool_use needs the tool's name")


@router.post(
    "/api/v1/user-sessions/import-claude-session",
    response_model=ImportClaudeSessionResponse,
    summary="Import Claude Session",
    openapi_extra=_FILE_FORM_DOC,
    responses={
        404: {"description": "Unknown workspace"},
        409: {"description": "claude_session_id is another owner's"},
        422: {"description": "Invalid request; the detail names the field"},
    },
)
async def import_claude_session(
    body: ImportClaudeSessionRequest, request: Request, p: Annotated[Principal, Depends(current_principal)]
) -> ImportClaudeSessionResponse:
    """Create a user session and a Claude Code agent session holding every message, in one transaction.
    Launch later with the returned agent_session_id (or resume_session_id = claude_session_id).

    The body is the JSON document below, or Claude Code's own session file as it is
    (`Content-Type: application/x-ndjson`, the other fields as query parameters): its user and
    assistant lines become the messages (text, tool_use, tool_result); sidechains, meta lines,
    local-command echoes, summaries and snapshots are skipped; thinking, images and unknown blocks are
    kept in the message's metadata (`claude_code_blocks`). The answer's `claude_code_file` counts both."""
    _check_launchable(body.messages)
    async with get_services(request).sessionmaker() as db:
        ws = await owned_workspace(db, p, body.workspace_id)
        taken = (
            await db.execute(
                select(AgentSession.id)
                .where(AgentSession.provider_session_id == body.claude_session_id, AgentSession.owner != p.owner)
                .limit(1)
            )
        ).first()
        if taken is not None:
            raise conflict("claude_session_id is already in use; a conversation is imported under its own id")
        now = utcnow()
        user = UserSession(
            id=new_id("usess"), owner=p.owner, workspace_id=ws.id, name=body.session_name, created_at=now
        )
        agent = AgentSession(
            id=new_id("session"),
            owner=p.owner,
            user_session_id=user.id,
            workspace_id=ws.id,
            agent_id="CLAUDE_CODE",
            status="created",
            data={"imported_from": "claude_cli"},
            provider_session_id=body.claude_session_id,
            imported=True,
            worktree_name=body.worktree_name,
            created_at=now,
            last_active=now,
        )
        with _no_gc_pauses():
            rows = _rows(agent.id, body.messages)
        agent.message_count = len(rows)
        db.add(user)
        await db.flush()
        db.add(agent)
        await db.flush()
        if rows:
            await _insert_messages(await db.connection(), rows)
        await db.commit()
    return ImportClaudeSessionResponse(
        success=True,
        user_session_id=user.id,
        agent_session_id=agent.id,
        message_count=len(rows),
        error=None,
        claude_code_file=request.scope.get("state", {}).get(_REPORT_KEY),
    )
