"""Review and ship a session's work: its diff against the commit it started from, commit, merge, push.

The git itself is daemon/review.py; this module finds the session's worktree and branch (the caller's
own session only), checks the request, and holds the locks: the repository's for changes, one per
session for diffs (each diff reads the worktree through the same private index).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from pathlib import Path

from daemon import review
from daemon.errors import FailedPrecondition, InvalidArgument
from daemon.store import SessionRecord
from daemon.worktrees import Worktrees

__all__ = ["SessionGit"]

_STRATEGIES = ("merge", "squash", "fast-forward")


class SessionGit:
    """A session's diff, commit, merge and push.

    `owned(agent_session_id, owner)` returns the owner's session record (NotFound otherwise);
    `in_turn(agent_session_id)` says whether its agent is in a turn right now.
    """

    def __init__(
        self,
        worktrees: Worktrees,
        *,
        owned: Callable[[str, str], SessionRecord],
        in_turn: Callable[[str], bool],
    ) -> None:
        self._worktrees = worktrees
        self._owned = owned
        self._in_turn = in_turn
        # Weak: a session's diff lock lives while someone holds or waits on it.
        self._diff_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _session_of(self, agent_session_id: str, owner: str) -> SessionRecord:
        rec = self._owned(agent_session_id, owner)
        if not rec.worktree_path or not rec.branch:
            raise FailedPrecondition(f"session {agent_session_id} has no worktree branch")
        return rec

    @staticmethod
    async def _base_commit(rec: SessionRecord) -> str:
        base = str(rec.settings.get("base_commit") or "")
        if base:
            return base
        # Sessions from before the base was recorded: where the branch left the repository's HEAD.
        return await asyncio.to_thread(review.fork_point, Path(rec.worktree_path), Path(rec.repository))

    async def diff(
        self, agent_session_id: str, owner: str, *, path: str = "", stat_only: bool = False, max_patch_bytes: int = 0
    ) -> tuple[review.Diff, str]:
        """(the session's diff against its base commit, its base_ref)."""
        rec = self._session_of(agent_session_id, owner)
        if path and (len(path) > 4096 or "\0" in path or path.startswith("-")):
            raise InvalidArgument("path", "must be a path inside the worktree")
        if not 0 <= max_patch_bytes <= review.PATCH_BYTES_LIMIT:
            raise InvalidArgument("max_patch_bytes", f"must be 0 (1 MiB) to {review.PATCH_BYTES_LIMIT}")
        base = await self._base_commit(rec)
        lock = self._diff_locks.get(agent_session_id)
        if lock is None:
            lock = self._diff_locks[agent_session_id] = asyncio.Lock()
        async with lock:
            result = await asyncio.to_thread(
                review.diff,
                Path(rec.worktree_path),
                base,
                path=path or None,
                stat_only=stat_only,
                max_patch_bytes=max_patch_bytes or review.MAX_PATCH_BYTES,
            )
        return result, str(rec.settings.get("base_ref") or "")

    async def commit(self, agent_session_id: str, owner: str, message: str, author: str = "") -> str:
        """Commit everything in the session's worktree; the new commit. Refused while a turn runs."""
        rec = self._session_of(agent_session_id, owner)
        if self._in_turn(agent_session_id):
            raise FailedPrecondition(f"session {agent_session_id} is in a turn; commit when the turn has ended")
        async with self._worktrees.repository_lock(Path(rec.repository)):
            return await asyncio.to_thread(review.commit_all, Path(rec.worktree_path), message, author)

    async def merge(
        self, agent_session_id: str, owner: str, *, into: str = "", strategy: str = "", message: str = ""
    ) -> review.MergeResult:
        """Merge the session's branch into `into` (default: its base branch, else the checked-out one)."""
        rec = self._session_of(agent_session_id, owner)
        strategy = strategy or "merge"
        if strategy not in _STRATEGIES:
            raise InvalidArgument("strategy", "must be merge, squash or fast-forward")
        repo = Path(rec.repository)
        async with self._worktrees.repository_lock(repo):
            target = into or await asyncio.to_thread(
                review.default_target, repo, str(rec.settings.get("base_ref") or "")
            )
            if target == rec.branch:
                raise InvalidArgument("into", "is the session's own branch")
            return await asyncio.to_thread(
                review.merge,
                repo,
                rec.branch,
                target,
                strategy,  # type: ignore[arg-type]
                message,
            )

    async def push(self, agent_session_id: str, owner: str, *, remote: str = "", branch: str = "") -> str:
        """Push the session's branch to `remote` (default origin) as `branch` (default its own name)."""
        rec = self._session_of(agent_session_id, owner)
        async with self._worktrees.repository_lock(Path(rec.repository)):
            return await asyncio.to_thread(review.push, Path(rec.worktree_path), rec.branch, remote or "origin", branch)
