"""The worktrees sessions leave behind: list an owner's, remove one, forget a session but keep its worktree.

A worktree outlives its session: forgetting a session drops it from every read, and the store keeps
its worktree as still its owner's (`left_worktrees`) until it is removed. Another owner can neither
see, take nor remove it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.ownership import check_owner, holder_of
from daemon.repositories import Repositories
from daemon.statuses import RUNNING_STATUSES
from daemon.store import SessionRecord, StateStore
from daemon.worktrees import Worktrees

__all__ = ["SessionWorktrees"]

log = logging.getLogger("berth.daemon.worktrees")


class SessionWorktrees:
    """Lists, removes and hands back sessions' worktrees.

    `get(agent_session_id)` is the session's record (NotFound otherwise), `owned(rec, owner)` the record
    when it is `owner`'s, `live` the running sessions by id, `lock(agent_session_id)` the session's lock.
    """

    def __init__(
        self,
        store: Callable[[], StateStore],
        repositories: Repositories,
        worktrees: Worktrees,
        *,
        get: Callable[[str], SessionRecord],
        owned: Callable[[SessionRecord, str], SessionRecord],
        live: Mapping[str, object],
        lock: Callable[[str], asyncio.Lock],
    ) -> None:
        self._store = store
        self._repositories = repositories
        self._worktrees = worktrees
        self._get = get
        self._owned = owned
        self._live = live
        self._lock = lock

    async def remove(
        self,
        worktree_path: str = "",
        *,
        force: bool,
        delete_branch: bool,
        agent_session_id: str = "",
        owner: str = "",
        check_only: bool = False,
        delete_branch_if_merged: bool = False,
    ) -> tuple[str, bool]:
        """Remove a worktree: the one of `agent_session_id` (which must be `owner`'s and still hold
        it), or the one at `worktree_path`. Never a running session's; never a dirty one unless
        `force`. With `check_only`, only says whether it would be allowed (a running session aside)."""
        store = self._store()
        if owner and worktree_path and not agent_session_id:
            # By path, an owner removes only a worktree of theirs: a session's they hold, or a forgotten one.
            holder = holder_of(store, str(Path(worktree_path)))
            kept = store.left_worktree(worktree_path=str(Path(worktree_path)))
            held_by = holder.owner if holder is not None else kept.owner if kept is not None else None
            if held_by != owner:
                raise NotFound(f"worktree {worktree_path} not found")
        left = store.left_worktree(agent_session_id=agent_session_id) if agent_session_id else None
        if left is not None and store.get_session(agent_session_id) is None:
            # A forgotten session's worktree: still its owner's, and no session holds it.
            if left.owner != owner and owner:
                raise NotFound(f"session {agent_session_id} not found")
            if worktree_path and Path(worktree_path) != Path(left.worktree_path):
                raise InvalidArgument("worktree_path", "is not the worktree of agent_session_id")
            worktree_path, agent_session_id = left.worktree_path, ""
        if agent_session_id:
            rec = self._owned(self._get(agent_session_id), owner)
            if worktree_path and not Path(worktree_path) == Path(rec.worktree_path):
                raise InvalidArgument("worktree_path", "is not the worktree of agent_session_id")
            worktree_path = rec.worktree_path
            holder = holder_of(store, worktree_path)
            if holder is not None and holder.agent_session_id != agent_session_id:
                raise FailedPrecondition(
                    f"the worktree of session {agent_session_id} now belongs to session {holder.agent_session_id}"
                    if holder.owner == owner
                    else f"the worktree of session {agent_session_id} now belongs to another session"
                )
        if not worktree_path:
            raise InvalidArgument("worktree_path", "is required (or agent_session_id)")
        if check_only:
            path = Path(worktree_path)
            if not path.is_dir():
                raise NotFound(f"worktree {worktree_path} does not exist")
            if not force and await self._worktrees.is_dirty(path):
                raise FailedPrecondition(
                    f"force: worktree {worktree_path} has uncommitted changes or untracked files; "
                    "pass force=true to remove them with it",
                    field="force",
                )
            return "", False
        for sid in self._live:
            running = store.get_session(sid)
            if running is not None and Path(running.worktree_path) == Path(worktree_path):
                raise FailedPrecondition(f"worktree {worktree_path} is in use by running session {sid}; stop it first")
        result = await self._worktrees.remove(
            Path(worktree_path),
            force=force,
            delete_branch=delete_branch,
            delete_branch_if_merged=delete_branch_if_merged,
        )
        store.drop_left_worktree(worktree_path)
        return result

    async def forget(self, agent_session_id: str, owner: str) -> str:
        """Forget `owner`'s session that is not running; its worktree (returned, or "") stays theirs."""
        async with self._lock(agent_session_id):
            rec = self._get(agent_session_id)
            check_owner(rec, owner)
            if rec.status in RUNNING_STATUSES or agent_session_id in self._live:
                raise FailedPrecondition(f"session {agent_session_id} is {rec.status}; stop it first")
            kept = self._store().forget_session(agent_session_id)
        log.info("forgot session %s (worktree kept: %s)", agent_session_id, kept or "none")
        return kept if kept and Path(kept).is_dir() else ""

    async def listed(self, repository: str, owner: str) -> list[dict[str, Any]]:
        """`owner`'s worktrees of `repository`: path, branch, the session that last held it, dirty."""
        repo = await self._repositories.known(repository)
        if repo is None:
            return []
        store = self._store()
        out = []
        for listed in await self._worktrees.listed(repo):
            holder = holder_of(store, str(listed.path))
            left = None if holder is not None else store.left_worktree(worktree_path=str(listed.path))
            held_by = holder.owner if holder is not None else left.owner if left is not None else None
            if held_by is None or (owner and held_by != owner):
                continue  # the pool's, or another owner's
            out.append(
                {
                    "path": str(listed.path),
                    "branch": listed.branch,
                    "dirty": listed.dirty,
                    "agent_session_id": holder.agent_session_id if holder else left.agent_session_id if left else "",
                    "session_status": holder.status if holder else "",
                    "forgotten": holder is None,
                }
            )
        return out
