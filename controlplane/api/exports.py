"""GET /api/sessions/{id}/export — a session's conversation as a file another tool opens.

`format=claude-code` answers a Claude Code session file: `claude --resume <id>` accepts it once it sits
in the project directory of the directory claude starts in (`berth export --install` puts it there).
The file carries the user and assistant text and every tool call paired with its result; system notices,
errors, approvals and a subagent's own turns are left out, as Claude Code would not send them.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, select

from claude_sessions import SessionFileError, build_session_lines
from controlplane.api.common import owned_agent_session
from controlplane.auth import Principal, current_principal
from controlplane.db.models import Message
from controlplane.errors import Conflict, InvalidField
from controlplane.schemas import PROVIDER_SESSION_ID
from controlplane.services import get_services

__all__ = ["SESSION_ID_HEADER", "router"]

router = APIRouter(tags=["sessions"])

SESSION_ID_HEADER = "Berth-Claude-Session-Id"
_EXPORT_ID_NAMESPACE = uuid.UUID("0b3c8c52-51c4-4f0e-9f53-6a3b8d3c1e7e")
_EXPORTED_TYPES = ("text", "tool_use", "tool_result")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _claude_session_id(agent_id: str, provider_session_id: str | None, session_id: str) -> str:
    """The session's own Claude id when it has one; otherwise an id made from the Berth id (the same on
    every export, so installing twice overwrites instead of adding a copy)."""
    if agent_id == "CLAUDE_CODE" and provider_session_id and PROVIDER_SESSION_ID.fullmatch(provider_session_id):
        return provider_session_id.lower()
    return str(uuid.uuid5(_EXPORT_ID_NAMESPACE, session_id))


def _message(row: Message) -> dict[str, Any] | None:
    content = row.content or {}
    if content.get("type", "text") not in _EXPORTED_TYPES:
        return None
    return {
        "message_id": row.id,
        "role": row.role,
        "content": content,
        "created_at": row.created_at.isoformat(),
        "metadata": row.meta or {},
    }


@router.get(
    "/api/sessions/{session_id}/export",
    summary="Export a session as a file",
    response_class=Response,
    responses={
        200: {
            "description": "A Claude Code session file (one JSON object per line); the header "
            f"`{SESSION_ID_HEADER}` names its session id (also each line's `sessionId`)",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        },
        404: {"description": "Not one of your sessions"},
        422: {"description": "Unknown format, or a cwd that is not an absolute path"},
    },
)
async def export_session(
    session_id: str,
    request: Request,
    p: Annotated[Principal, Depends(current_principal)],
    format: Annotated[Literal["claude-code"], Query(description="The file's format")] = "claude-code",
    cwd: Annotated[
        str | None,
        Query(
            max_length=4096,
            description="The directory the file says claude ran in "
            "(default: the session's worktree); give the directory you will resume it from",
        ),
    ] = None,
) -> Response:
    """The session's conversation as a file in `format`."""
    if cwd is not None and (not cwd.startswith("/") or _CONTROL.search(cwd)):
        raise InvalidField("cwd", "must be an absolute path without control characters", where="query")
    async with get_services(request).sessionmaker() as db:
        s = await owned_agent_session(db, p, session_id)
        rows = (
            (
                await db.execute(
                    select(Message)
                    .where(Message.agent_session_id == s.id)
                    .order_by(func.coalesce(Message.seq, 0), Message.pk)
                )
            )
            .scalars()
            .all()
        )
        claude_id = _claude_session_id(s.agent_id, s.provider_session_id, s.id)
        directory = cwd or s.worktree_path or "/"
        model = str((s.data or {}).get("model") or "")
        messages = [m for m in map(_message, rows) if m is not None]
    try:
        lines = build_session_lines(directory, claude_id, messages, model=model)
    except SessionFileError as exc:  # stored messages Claude Code cannot hold (an import predating a check)
        raise Conflict(f"the session cannot be written as a Claude Code file: {exc}") from None
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={
            SESSION_ID_HEADER: claude_id,
            "Content-Disposition": f'attachment; filename="{claude_id}.jsonl"',
        },
    )
