"""/api/v1/usage — what the agents used, grouped by workspace, owner or day.

The figures are the turns' own reports (each turn's `metadata.turn_usage`, as stored with the message that
ended it), so `since`/`until` select turns by when they ended. Callers see their own sessions; admins see
everyone's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import field_error, get_db
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.db.models import AgentSession, Message
from controlplane.schemas import UsageReport

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["usage"], route_class=StrictJSONRoute)
Db = Annotated[AsyncSession, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]
_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "duration_ms")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


@router.get("/usage", response_model=UsageReport, summary="Usage grouped by workspace, owner or day")
async def usage(
    db: Db,
    p: Caller,
    group_by: Literal["workspace", "owner", "day"] = "workspace",
    since: Annotated[datetime | None, Query(description="turns that ended at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="turns that ended before this time")] = None,
) -> dict:
    """The caller's turns (an admin's: everyone's) summed per group; `day` is the UTC date a turn ended."""
    if since is not None and until is not None and until <= since:
        raise field_error("until", "must be after since")
    q = (
        select(Message.meta, Message.created_at, AgentSession.id, AgentSession.owner, AgentSession.workspace_id)
        .join(AgentSession, AgentSession.id == Message.agent_session_id)
        .where(Message.meta["turn_complete"].as_boolean().is_(True))
    )
    if not p.is_admin:
        q = q.where(AgentSession.owner == p.owner)
    if since is not None:
        q = q.where(Message.created_at >= since)
    if until is not None:
        q = q.where(Message.created_at < until)
    groups: dict[str, dict[str, Any]] = {}
    sessions: dict[str, set[str]] = {}
    for meta, created_at, session_id, owner, workspace_id in (await db.execute(q)).all():
        turn = (meta or {}).get("turn_usage")
        if not isinstance(turn, dict):
            continue
        key = {"workspace": workspace_id or "", "owner": owner, "day": created_at.date().isoformat()}[group_by]
        g = groups.setdefault(key, {"key": key, **{k: 0 for k in _KEYS}, "cost_usd": None, "turns": 0})
        for k in _KEYS:
            g[k] += int(_number(turn.get(k)))
        cost = turn.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            g["cost_usd"] = (g["cost_usd"] or 0.0) + float(cost)
        g["turns"] += 1
        sessions.setdefault(key, set()).add(session_id)
    out = [{**g, "sessions": len(sessions[k])} for k, g in sorted(groups.items())]
    return {"group_by": group_by, "since": since, "until": until, "groups": out}
