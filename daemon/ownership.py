"""Who a session or a worktree belongs to: the checks every owner-scoped call makes."""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path

from daemon.errors import FailedPrecondition, NotFound
from daemon.launch_request import LaunchRequest
from daemon.statuses import RUNNING_STATUSES
from daemon.store import SessionRecord, StateStore

__all__ = ["check_owner", "check_worktree_free", "holder_of"]


def check_owner(rec: SessionRecord, owner: str) -> None:
    """NotFound unless `owner` may see `rec`: the machine's own user ("", grpcurl on the socket) sees
    every session, an owner only theirs."""
    if owner and rec.owner != owner:
        raise NotFound(f"session {rec.agent_session_id} not found")


def holder_of(store: StateStore, worktree_path: str) -> SessionRecord | None:
    """The session that launched into `worktree_path` last (the one its files belong to now)."""
    sessions = store.sessions_at(worktree_path)
    return sessions[-1] if sessions else None


def check_worktree_free(store: StateStore, live: Container[str], path: Path, req: LaunchRequest) -> None:
    """FailedPrecondition when the worktree at `path` is another owner's, or a running session's
    (`live`: the ids of the sessions whose agents run)."""
    left = store.left_worktree(worktree_path=str(path))
    if left is not None and left.owner != req.owner:
        raise FailedPrecondition(
            f"worktree_name: {req.worktree_name!r} is taken on this machine by another owner; choose another name",
            field="worktree_name",
        )
    for other in store.sessions_at(str(path)):
        if other.agent_session_id == req.agent_session_id:
            continue
        if other.owner != req.owner:
            raise FailedPrecondition(
                f"worktree_name: {req.worktree_name!r} is taken on this machine by another owner; choose another name",
                field="worktree_name",
            )
        if other.status in RUNNING_STATUSES or other.agent_session_id in live:
            raise FailedPrecondition(
                f"worktree_name: {req.worktree_name!r} is in use by session {other.agent_session_id}; "
                "stop it first or choose another name",
                field="worktree_name",
            )
