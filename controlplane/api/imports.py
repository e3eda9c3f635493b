"""POST /api/v1/user-sessions/import-claude-session — import a Claude CLI conversation (seed document)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import insert

from controlplane.api.common import owned_workspace
from controlplane.auth import Principal, current_principal
from controlplane.db.models import AgentSession, Message, UserSession, new_id, utcnow
from controlplane.ingest import parse_time
from controlplane.schemas import ImportClaudeSessionRequest, ImportClaudeSessionResponse

__all__ = ["router"]

router = APIRouter(tags=["import"])


@router.post(
    "/api/v1/user-sessions/import-claude-session",
    response_model=ImportClaudeSessionResponse,
    summary="Import Claude Session",
    responses={404: {"description": "Unknown workspace"}, 422: {"description": "Invalid request"}},
)
async def import_claude_session(
    body: ImportClaudeSessionRequest, request: Request, p: Annotated[Principal, Depends(current_principal)]
) -> ImportClaudeSessionResponse:
    """Create a user session and a Claude Code agent session holding every message, in one transaction.
    Launch later with the returned agent_session_id (or resume_session_id = claude_session_id)."""
    async with request.app.state.sessionmaker() as db:
        ws = await owned_workspace(db, p, body.workspace_id)
        now = utcnow()
        user = UserSession(id=new_id("usess"), owner=p.owner, workspace_id=ws.id, name=body.session_name, created_at=now)
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
        db.add(user)
        await db.flush()
        db.add(agent)
        await db.flush()
        rows = []
        for m in body.messages:
            meta = dict(m.metadata)
            if m.message_id:
                meta["import_message_id"] = m.message_id
            rows.append(
                {
                    "id": new_id("msg"),
                    "agent_session_id": agent.id,
                    "seq": None,
                    "role": m.role,
                    "content": m.content.model_dump(exclude_none=True),
                    "metadata": meta,
                    "status": None,
                    "created_at": parse_time(m.created_at),
                }
            )
        if rows:
            await db.execute(insert(Message.__table__), rows)
        await db.commit()
    return ImportClaudeSessionResponse(
        success=True, user_session_id=user.id, agent_session_id=agent.id, message_count=len(rows), error=None
    )
