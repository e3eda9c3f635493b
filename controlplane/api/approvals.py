"""/api/sessions/{id}/approvals — the agent's permission requests and questions, and their answers.

The daemon owns approvals (it stores each one before it is announced), so these routes ask the session's
daemon; a control-plane restart loses none. The session is resolved among the caller's own first
(404 otherwise); a decision on an approval that is no longer pending is a 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from berth.daemon.v1 import daemon_pb2
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from google.protobuf import json_format
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import get_db, session_daemon
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.daemons import to_struct
from controlplane.ingest import parse_time
from controlplane.schemas import Approval, ApprovalDecision, ApprovalList, ApprovalStatus
from controlplane.services import get_services

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["approvals"], route_class=StrictJSONRoute)
Db = Annotated[AsyncSession, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]


def approval_json(a: daemon_pb2.Approval) -> dict[str, Any]:
    """A daemon approval in the REST shape."""
    return {
        "id": a.id,
        "tool_name": a.tool_name,
        "input": json_format.MessageToDict(a.input),
        "kind": a.kind,
        "status": a.status,
        "created_at": parse_time(a.created_at),
        "decided_at": parse_time(a.decided_at) if a.decided_at else None,
        "message": a.message or None,
        "decided_by": a.decided_by or None,
        "remember": a.remember,
        "tool_use_id": a.tool_use_id or None,
        "detail": json_format.MessageToDict(a.detail),
    }


@router.get("/{session_id}/approvals", response_model=ApprovalList, summary="List a session's approvals")
async def list_approvals(
    session_id: str, request: Request, db: Db, p: Caller, status: Annotated[ApprovalStatus | None, Query()] = None
) -> dict:
    """The agent's permission requests and questions, oldest first (only those with `status` when given)."""
    client = await session_daemon(request, db, p, session_id)
    if client is None:
        return {"approvals": []}
    answer = await client.list_approvals(session_id, p.owner, status or "")
    return {"approvals": [approval_json(a) for a in answer.approvals]}


@router.post("/{session_id}/approvals/{approval_id}", response_model=Approval, summary="Decide an approval")
async def decide_approval(
    session_id: str, approval_id: str, body: ApprovalDecision, request: Request, db: Db, p: Caller
) -> dict:
    """Allow or deny a pending approval; the agent goes on at once. 404 for an unknown approval, 409 for one
    already decided, withdrawn or expired."""
    client = await session_daemon(request, db, p, session_id)
    if client is None or len(approval_id) > 200:
        raise HTTPException(status_code=404, detail=f"approval {approval_id[:200]!r} not found")
    req = daemon_pb2.DecideApprovalRequest(
        agent_session_id=session_id,
        approval_id=approval_id,
        owner=p.owner,
        decision=body.decision,
        message=body.message or "",
        remember=body.remember,
    )
    if body.updated_input is not None:
        req.updated_input.CopyFrom(to_struct(body.updated_input))
    decided = await client.decide_approval(req)
    get_services(request).ingest.ensure(session_id)
    return approval_json(decided)
