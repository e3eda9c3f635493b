"""/api/v1/workspaces/{id}/worktrees — the caller's Berth worktrees of a workspace, and pruning them.

A deleted session's worktree stays on the machine (its work is never thrown away unasked); the daemon
keeps it as the owner's. GET lists the caller's worktrees of the workspace on one machine (the
workspace's default machine unless `machine_id`), each with whether its session was deleted. POST
.../prune removes the deleted sessions' worktrees: a dirty one (uncommitted changes or untracked files)
is kept unless `force`; a branch goes with its worktree only when its commits are on another branch too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import client_for, field_error, forget_on_daemon, get_db, owned_machine, owned_workspace
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.daemons import DaemonCallError, DaemonClient
from controlplane.db.models import AgentSession, Machine, Workspace
from controlplane.schemas import PruneRequest, PruneResult, WorktreeList
from controlplane.statuses import NOT_ENDED

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workspaces", tags=["worktrees"], route_class=StrictJSONRoute)
Db = Annotated[AsyncSession, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]


async def _machine_of(
    db: AsyncSession, p: Principal, workspace_id: str, machine_id: str | None, where: str
) -> tuple[Workspace, Machine]:
    """The caller's workspace and the caller's machine to look on (404 for anyone else's)."""
    ws = await owned_workspace(db, p, workspace_id)
    chosen = machine_id or ws.default_machine_id
    if chosen is None:
        raise field_error("machine_id", "the workspace has no default machine; name one", where=where)
    return ws, await owned_machine(db, p, chosen)


async def _listing(
    request: Request, db: AsyncSession, p: Principal, ws: Workspace, machine: Machine
) -> tuple[DaemonClient, list[dict]]:
    known = set((await db.execute(select(AgentSession.id).where(AgentSession.owner == p.owner))).scalars())
    await db.commit()  # hold no transaction while the daemon works
    client = client_for(request, machine)
    listed = await client.list_worktrees(ws.repository, p.owner)
    return client, [
        {
            "path": w.path,
            "branch": w.branch,
            "dirty": w.dirty,
            "agent_session_id": w.agent_session_id,
            "session_status": None if w.forgotten else w.session_status or None,
            "session_deleted": w.forgotten or w.agent_session_id not in known,
            "forgotten": w.forgotten,
        }
        for w in listed.worktrees
    ]


def _public(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "forgotten"}


@router.get("/{workspace_id}/worktrees", response_model=WorktreeList, summary="The workspace's worktrees")
async def list_worktrees(
    workspace_id: str,
    request: Request,
    db: Db,
    p: Caller,
    machine_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict:
    """The caller's worktrees of the workspace on the machine, with whether each one's session was deleted."""
    ws, machine = await _machine_of(db, p, workspace_id, machine_id, "query")
    _, entries = await _listing(request, db, p, ws, machine)
    return {"workspace_id": ws.id, "machine_id": machine.id, "worktrees": [_public(e) for e in entries]}


@router.post(
    "/{workspace_id}/worktrees/prune", response_model=PruneResult, summary="Remove deleted sessions' worktrees"
)
async def prune_worktrees(workspace_id: str, body: PruneRequest, request: Request, db: Db, p: Caller) -> dict:
    """Remove the worktrees whose sessions were deleted; dirty ones stay unless `force`. Each worktree
    kept is listed with the reason."""
    ws, machine = await _machine_of(db, p, workspace_id, body.machine_id, "body")
    client, entries = await _listing(request, db, p, ws, machine)
    removed, kept = [], []
    for e in (e for e in entries if e["session_deleted"]):
        who = {"path": e["path"], "branch": e["branch"], "agent_session_id": e["agent_session_id"]}
        if not e["forgotten"] and e["session_status"] in NOT_ENDED:
            kept.append({**who, "reason": f"its agent still runs on the machine (status {e['session_status']})"})
            continue
        if e["dirty"] and not body.force:
            kept.append(
                {**who, "reason": "it has uncommitted changes or untracked files; prune with force to remove it"}
            )
            continue
        try:
            done = await client.remove_worktree(
                e["agent_session_id"], p.owner, force=body.force, delete_branch_if_merged=True
            )
        except DaemonCallError as err:
            if err.http_status >= 500:
                raise
            kept.append({**who, "reason": err.message})
            continue
        if not e["forgotten"]:
            await forget_on_daemon(client, e["agent_session_id"], p.owner)
        removed.append({**who, "branch_deleted": done.branch_deleted})
    return {"workspace_id": ws.id, "machine_id": machine.id, "removed": removed, "kept": kept}
