"""/api/sessions/{id}/diff, /commit, /merge, /push — see, keep and ship a session's work.

Git runs on the session's machine (the daemon's GetDiff, Commit, Merge, Push); the session is resolved
among the caller's own first (404 otherwise). Refusals (a turn is running, nothing to commit, a dirty
target checkout, the remote said no) are 409s with git's words; a merge conflict is a 409 listing the
files, with nothing changed anywhere.
"""

from __future__ import annotations

from typing import Annotated

from berth.daemon.v1 import daemon_pb2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.api.common import conflict, get_db, session_daemon
from controlplane.api.strict_json import StrictJSONRoute
from controlplane.auth import Principal, current_principal
from controlplane.daemons import DaemonClient
from controlplane.schemas import (
    CommitRequest,
    CommitResult,
    DiffResult,
    MergeRequest,
    MergeResult,
    PushRequest,
    PushResult,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["review"], route_class=StrictJSONRoute)
Db = Annotated[AsyncSession, Depends(get_db)]
Caller = Annotated[Principal, Depends(current_principal)]


async def _daemon(request: Request, db: AsyncSession, p: Principal, session_id: str) -> DaemonClient:
    client = await session_daemon(request, db, p, session_id)
    if client is None:
        raise conflict(f"session {session_id!r} was never launched: it has no worktree")
    return client


@router.get("/{session_id}/diff", response_model=DiffResult, summary="The session's changes")
async def get_diff(
    session_id: str,
    request: Request,
    db: Db,
    p: Caller,
    path: Annotated[str | None, Query(max_length=4096)] = None,
    stat_only: bool = False,
    max_patch_bytes: Annotated[int, Query(ge=0, le=16 * 1024 * 1024)] = 0,
) -> dict:
    """Committed, uncommitted and untracked changes of the session's worktree against the commit it
    started from; `path` for one file, `stat_only` for no patch; a patch over `max_patch_bytes` (default
    1 MiB) is cut with `truncated: true`."""
    client = await _daemon(request, db, p, session_id)
    d = await client.get_diff(
        daemon_pb2.GetDiffRequest(
            agent_session_id=session_id,
            owner=p.owner,
            path=path or "",
            stat_only=stat_only,
            max_patch_bytes=max_patch_bytes,
        )
    )
    return {
        "base_ref": d.base_ref or None,
        "base_commit": d.base_commit,
        "head_commit": d.head_commit,
        "files": [
            {
                "path": f.path,
                "old_path": f.old_path or None,
                "status": f.status,
                "additions": f.additions,
                "deletions": f.deletions,
            }
            for f in d.files
        ],
        "patch": None if stat_only else d.patch,
        "truncated": d.truncated,
    }


@router.post("/{session_id}/commit", response_model=CommitResult, summary="Commit the session's changes")
async def commit(session_id: str, body: CommitRequest, request: Request, db: Db, p: Caller) -> dict:
    """Commit everything in the worktree on the session's branch; 409 while a turn runs or with nothing to commit."""
    client = await _daemon(request, db, p, session_id)
    done = await client.commit(
        daemon_pb2.CommitRequest(
            agent_session_id=session_id, owner=p.owner, message=body.message, author=body.author or ""
        )
    )
    return {"commit": done.commit}


@router.post(
    "/{session_id}/merge",
    response_model=MergeResult,
    summary="Merge the session's branch",
    responses={409: {"description": "conflicts (`conflicts` lists the files) or a refusal"}},
)
async def merge(session_id: str, body: MergeRequest, request: Request, db: Db, p: Caller) -> dict | JSONResponse:
    """Merge the session's branch into `into` (default: its base branch). Computed without touching a
    working tree; the branch moves only when its checkout (if any) is clean."""
    client = await _daemon(request, db, p, session_id)
    done = await client.merge(
        daemon_pb2.MergeRequest(
            agent_session_id=session_id,
            owner=p.owner,
            into=body.into or "",
            strategy=body.strategy,
            message=body.message or "",
        )
    )
    if done.conflicts:
        return JSONResponse(
            status_code=409,
            content={
                "detail": f"merging into {done.into!r} conflicts in {len(done.conflicts)} file(s); nothing was changed",
                "conflicts": list(done.conflicts),
            },
        )
    return {"merged_commit": done.merged_commit, "into": done.into, "strategy": done.strategy}


@router.post("/{session_id}/push", response_model=PushResult, summary="Push the session's branch")
async def push(session_id: str, body: PushRequest, request: Request, db: Db, p: Caller) -> dict:
    """Push the session's branch to `remote` with the machine's own git credentials (none pass through
    Berth); the remote's refusal is a 409 with its words."""
    client = await _daemon(request, db, p, session_id)
    done = await client.push(
        daemon_pb2.PushRequest(agent_session_id=session_id, owner=p.owner, remote=body.remote, branch=body.branch or "")
    )
    return {"remote": done.remote, "ref": done.ref}
