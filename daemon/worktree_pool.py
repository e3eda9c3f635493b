"""A pool of ready (checked-out) worktrees per repository, so launch never waits for a checkout.

Each pooled repository keeps up to `size` detached worktrees at the commit of its
HEAD, under `<worktrees_root>/<repo key>/.pool/`. A launch claims one (the
manager moves it to its real path and creates the branch in it: a few
milliseconds at any repository size) and the pool refills in the background.
A background task per repository also notices when HEAD moves and moves the
ready worktrees along (`git checkout --detach`, which only touches changed files).

Only short git steps run under the repository lock shared with the manager
(registering a worktree with `--no-checkout`, unregistering one); the slow parts
(populating the files, deleting a directory tree) run outside it.

Bounds: `size` worktrees per repository and `max_repositories` pooled repositories
(least recently used ones are drained). Everything is removed by close(), by
set_size(0), and worktrees left by an earlier process are swept on first use.

Size: the pool's bookkeeping and its background task (fill, refresh, trim, sweep, retry) share one
state per repository; the git steps themselves are daemon/git_commands.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.git_commands import GitError, git, list_worktrees, run

__all__ = ["POOL_DIR", "REPO_MARKER", "PoolMember", "PoolStats", "WorktreePool"]

log = logging.getLogger(__name__)

POOL_DIR = ".pool"  # branch names cannot start with '.', so no user worktree lands here
_TRASH_PREFIX = ".trash-"
# Written in each per-repository directory under worktrees_root (the repository's path), so a
# worktree whose directory has vanished can still be traced back to its repository.
REPO_MARKER = ".berth-repository"
_RETRY_SECONDS = 5.0
_MAX_BACKOFF_SECONDS = 1800.0


@dataclass
class PoolMember:
    """One pooled worktree: a detached checkout of `commit` at `path`."""

    path: Path
    commit: str
    ready: bool = False  # files populated and not being refreshed


@dataclass
class PoolStats:
    """What the pool holds for one repository."""

    ready: int
    pending: int
    commit: str


@dataclass
class _RepoPool:
    repository: Path
    pool_dir: Path
    members: list[PoolMember] = field(default_factory=list)
    target: str = ""  # commit HEAD pointed at when last checked
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    last_used: float = 0.0
    stopping: bool = False
    disabled: str = ""  # why pooling does not work for this repository (until retry_at)
    retry_at: float = 0.0  # monotonic time to try pooling again after a refusal
    backoff: float = 0.0  # seconds the next refusal pauses pooling for
    prune: bool = False  # a member vanished: `git worktree prune` its registration


def _head_commit(repository: Path) -> str:
    head = run(repository, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return head.stdout.strip() if head.ok else ""


def _prune(repository: Path) -> None:
    try:
        git(repository, "worktree", "prune")
    except GitError as exc:
        log.warning("git worktree prune failed in %s: %s", repository, exc)


def _admin_dir(worktree: Path) -> Path | None:
    """The `.git/worktrees/<id>` directory a linked worktree's `.git` file points at."""
    try:
        text = (worktree / ".git").read_text()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    admin = Path(text[len("gitdir: ") :].strip())
    return admin if admin.parent.name == "worktrees" else None


class WorktreePool:
    """Ready worktrees per repository; see the module docstring.

    `lock_for(str(repository))` must return the manager's per-repository asyncio.Lock;
    `repo_dir(repository)` the manager's per-repository directory under worktrees_root.
    """

    def __init__(
        self,
        worktrees_root: Path,
        size: int,
        *,
        lock_for: Callable[[str], asyncio.Lock],
        repo_dir: Callable[[Path], Path],
        max_repositories: int = 4,
        refresh_seconds: float = 10.0,
        retry_seconds: float = 60.0,
    ) -> None:
        if size < 0:
            raise ValueError("pool size must be >= 0")
        self.worktrees_root = Path(worktrees_root)
        self._size = size
        self._lock_for = lock_for
        self._repo_dir = repo_dir
        self.max_repositories = max(1, max_repositories)
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self._repos: dict[Path, _RepoPool] = {}
        # Pool directories carry this process's token; the sweep removes everything else.
        self._token = uuid.uuid4().hex[:8]
        self._tasks: set[asyncio.Task[None]] = set()
        self._swept = False
        self._closed = False

    # ---- called by the manager (on the event loop, holding the repository lock) ----

    @property
    def size(self) -> int:
        """Ready worktrees kept per repository (0: pooling off)."""
        return self._size

    def touch(self, repository: Path) -> None:
        """Note a launch on `repository`: start pooling it (and sweep leftovers once)."""
        if self._closed:
            return
        if not self._swept:
            self._swept = True
            self._spawn(self._sweep())
        if self._size == 0:
            return
        rp = self._repos.get(repository)
        if rp is None:
            if len(self._repos) >= self.max_repositories:
                oldest = min(self._repos.values(), key=lambda r: r.last_used)
                del self._repos[oldest.repository]
                self._spawn(self._drain(oldest))
            pool_dir = self._repo_dir(repository) / POOL_DIR
            rp = self._repos[repository] = _RepoPool(repository, pool_dir)
            rp.task = self._spawn(self._maintain(rp))
        rp.last_used = time.monotonic()

    def take(self, repository: Path) -> PoolMember | None:
        """Remove and return a ready worktree of `repository` (None when there is none)."""
        rp = self._repos.get(repository)
        if rp is None or rp.stopping or rp.disabled:
            return None
        ready = []
        for m in [m for m in rp.members if m.ready]:
            if m.path.is_dir():
                ready.append(m)
            else:  # deleted behind our back: forget it, refill
                rp.members.remove(m)
                rp.prune = True
                rp.wake.set()
        if not ready:
            return None
        # Prefer one at the current target commit (no file changes when switching).
        member = next((m for m in ready if m.commit == rp.target), ready[0])
        rp.members.remove(member)
        return member

    def give_back(self, repository: Path, member: PoolMember) -> None:
        """Return an unused member taken with take()."""
        rp = self._repos.get(repository)
        if rp is not None and not rp.stopping:
            rp.members.append(member)
        else:
            self._spawn(self._discard(repository, member.path))

    def claimed(self, repository: Path, *, used: bool = True) -> None:
        """A member was used (or lost): refill in the background."""
        rp = self._repos.get(repository)
        if rp is not None:
            if used:
                rp.backoff = 0.0
            rp.wake.set()

    def head_seen(self, repository: Path, head: str) -> None:
        """The manager saw HEAD at `head`: refresh the pool if it moved."""
        rp = self._repos.get(repository)
        if rp is not None and head and head != rp.target:
            rp.wake.set()

    def refused(self, repository: Path, member: PoolMember, reason: str) -> None:
        """Git refused to claim `member` (e.g. a locked worktree cannot be moved): drop it and pause
        pooling `repository`, for retry_seconds at first and twice as long after each further refusal;
        launches meanwhile add their worktrees as if there were no pool."""
        self._spawn(self._discard(repository, member.path))
        rp = self._repos.get(repository)
        if rp is None or rp.stopping:
            return
        rp.backoff = min(rp.backoff * 2 or self.retry_seconds, _MAX_BACKOFF_SECONDS)
        rp.retry_at = time.monotonic() + rp.backoff
        rp.disabled = reason
        log.warning("worktree pool of %s paused for %.0f s: %s", repository, rp.backoff, reason)
        members, rp.members = rp.members, []
        for other in members:
            self._spawn(self._discard(repository, other.path))
        rp.wake.set()

    def stats(self) -> dict[Path, PoolStats]:
        """Ready and pending members per pooled repository."""
        return {
            repo: PoolStats(
                ready=sum(m.ready for m in rp.members),
                pending=sum(not m.ready for m in rp.members),
                commit=rp.target,
            )
            for repo, rp in self._repos.items()
        }

    async def wait_ready(self, repository: Path, count: int | None = None, timeout: float = 120.0) -> None:
        """Wait until `repository` has `count` (default: size) ready members at HEAD's commit."""
        want = self._size if count is None else count
        deadline = time.monotonic() + timeout
        while True:
            rp = self._repos.get(repository)
            if rp is not None and rp.target:
                head = await asyncio.to_thread(_head_commit, repository)
                if sum(m.ready and m.commit == head and m.path.is_dir() for m in rp.members) >= want:
                    return
                if head != rp.target:
                    rp.wake.set()
            if time.monotonic() > deadline:
                raise TimeoutError(f"worktree pool of {repository} not ready after {timeout}s")
            await asyncio.sleep(0.05)

    async def set_size(self, size: int) -> None:
        """Change the per-repository size; 0 drains every pool."""
        if size < 0:
            raise ValueError("pool size must be >= 0")
        self._size = size
        if size == 0:
            await asyncio.gather(*(self._drain(rp) for rp in list(self._repos.values())))
        else:
            for rp in self._repos.values():
                rp.wake.set()

    async def close(self) -> None:
        """Stop background work and remove every pooled worktree. Idempotent."""
        self._closed = True
        await asyncio.gather(*(self._drain(rp) for rp in list(self._repos.values())))
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- background work ----------------------------------------------

    def _spawn(self, coro) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _maintain(self, rp: _RepoPool) -> None:
        """Keep `rp` filled at HEAD's commit until it is stopped; no failure ends it for good."""
        failures = 0
        while not rp.stopping and not self._closed:
            rp.wake.clear()
            try:
                await self._maintain_once(rp)
                failures = 0
            except Exception:
                failures += 1
                log.exception("worktree pool of %s failed (attempt %d); retrying", rp.repository, failures)
            if rp.stopping or self._closed:
                break
            wait = self.refresh_seconds if not failures else min(_RETRY_SECONDS * 2 ** (failures - 1), 300.0)
            if rp.disabled:
                wait = max(0.0, min(wait, rp.retry_at - time.monotonic()))
            try:
                await asyncio.wait_for(rp.wake.wait(), wait)
            except TimeoutError:
                pass

    async def _maintain_once(self, rp: _RepoPool) -> None:
        if rp.disabled and time.monotonic() >= rp.retry_at:
            log.info("worktree pool of %s: trying again after %s", rp.repository, rp.disabled)
            rp.disabled = ""
        head = await asyncio.to_thread(_head_commit, rp.repository)
        if rp.prune:
            rp.prune = False
            async with self._lock_for(str(rp.repository)):
                await asyncio.to_thread(_prune, rp.repository)
        if head and not rp.disabled:
            rp.target = head
            await self._refresh(rp, head)
            await self._fill(rp, head)
            await self._trim(rp)

    async def _refresh(self, rp: _RepoPool, head: str) -> None:
        for member in [m for m in rp.members if m.ready and m.commit != head]:
            if rp.stopping or head != rp.target:
                return
            member.ready = False  # not claimable while its files change
            try:
                await asyncio.to_thread(git, member.path, "checkout", "--quiet", "--detach", head)
            except GitError as exc:
                log.warning("could not refresh pooled worktree %s: %s", member.path, exc)
                if member in rp.members:
                    rp.members.remove(member)
                await self._discard(rp.repository, member.path)
                continue
            member.commit = head
            member.ready = True

    async def _fill(self, rp: _RepoPool, head: str) -> None:
        while len(rp.members) < self._size and not rp.stopping and not rp.disabled and not self._closed:
            if not await self._add(rp, head):
                await asyncio.sleep(_RETRY_SECONDS)  # don't spin on a repository git refuses
                return

    async def _trim(self, rp: _RepoPool) -> None:
        while len(rp.members) > self._size:
            spare = next((m for m in rp.members if m.ready), None)
            if spare is None:
                return
            rp.members.remove(spare)
            await self._discard(rp.repository, spare.path)

    async def _add(self, rp: _RepoPool, head: str) -> bool:
        """Create one member at `head`; False when git failed."""
        path = rp.pool_dir / f"{self._token}-{uuid.uuid4().hex[:12]}"
        member = PoolMember(path, head)
        rp.members.append(member)
        try:
            async with self._lock_for(str(rp.repository)):
                if rp.stopping:
                    rp.members.remove(member)
                    return True
                await asyncio.to_thread(self._register, rp, path, head)
            # The slow part, outside the lock: write the files and the index.
            await asyncio.to_thread(git, path, "reset", "--hard", "--quiet", head)
        except (GitError, OSError) as exc:
            log.warning("could not add pooled worktree for %s: %s", rp.repository, exc)
            if member in rp.members:
                rp.members.remove(member)
            await self._discard(rp.repository, path)
            return False
        if member in rp.members:
            member.ready = True
        else:  # drained meanwhile
            await self._discard(rp.repository, path)
        return True

    @staticmethod
    def _register(rp: _RepoPool, path: Path, head: str) -> None:
        rp.pool_dir.mkdir(parents=True, exist_ok=True)
        marker = rp.pool_dir.parent / REPO_MARKER
        if not marker.exists():
            marker.write_text(str(rp.repository) + "\n")
        git(rp.repository, "worktree", "add", "--quiet", "--no-checkout", "--detach", str(path), head)

    async def _drain(self, rp: _RepoPool, *, keep_entry: bool = False) -> None:
        """Stop `rp`'s task and remove its members."""
        rp.stopping = True
        rp.wake.set()
        if rp.task is not None and rp.task is not asyncio.current_task():
            await asyncio.gather(rp.task, return_exceptions=True)
        members, rp.members = rp.members, []
        for member in members:
            await self._discard(rp.repository, member.path)
        if not keep_entry and self._repos.get(rp.repository) is rp:
            del self._repos[rp.repository]

    async def _discard(self, repository: Path, path: Path) -> None:
        """Unregister and delete the pooled worktree at `path` (the deleting outside the lock)."""
        trash = path.parent / f"{_TRASH_PREFIX}{uuid.uuid4().hex[:12]}"

        def unregister() -> None:
            admin = _admin_dir(path)
            if path.exists():
                os.rename(path, trash)
            if admin is not None and admin.is_dir():
                shutil.rmtree(admin, ignore_errors=True)

        try:
            async with self._lock_for(str(repository)):
                await asyncio.to_thread(unregister)
        except OSError as exc:
            log.warning("could not remove pooled worktree %s: %s", path, exc)
        await asyncio.to_thread(shutil.rmtree, trash, True)
        await asyncio.to_thread(self._remove_empty_pool_dir, path.parent)

    @staticmethod
    def _remove_empty_pool_dir(pool_dir: Path) -> None:
        try:
            pool_dir.rmdir()
        except OSError:
            pass  # not empty (other members) or already gone

    async def _sweep(self) -> None:
        """Remove pooled worktrees and trash left under worktrees_root by earlier processes."""
        root = self.worktrees_root
        pool_dirs = await asyncio.to_thread(lambda: sorted(root.glob(f"*/{POOL_DIR}")) if root.is_dir() else [])
        for pool_dir in pool_dirs:
            try:
                repository = Path((pool_dir.parent / REPO_MARKER).read_text().strip())
            except OSError:
                repository = None
            entries = await asyncio.to_thread(_entries_of, pool_dir)
            for entry in entries:
                if entry.name.startswith(self._token):
                    continue
                if entry.name.startswith(_TRASH_PREFIX) or repository is None:
                    await asyncio.to_thread(shutil.rmtree, entry, True)
                else:
                    log.info("removing pooled worktree left by an earlier run: %s", entry)
                    await self._discard(repository, entry)
            if repository is not None and repository.is_dir():
                # Registrations whose directory is already gone (e.g. deleted by hand).
                async with self._lock_for(str(repository)):
                    await asyncio.to_thread(self._forget_missing, repository, pool_dir)
            await asyncio.to_thread(self._remove_empty_pool_dir, pool_dir)

    def _forget_missing(self, repository: Path, pool_dir: Path) -> None:
        try:
            entries = list_worktrees(repository)
        except GitError:
            return
        prefix = os.path.realpath(pool_dir) + os.sep
        for entry in entries:
            path = entry.path
            if (
                os.path.realpath(path).startswith(prefix)
                and not path.exists()
                and not path.name.startswith(self._token)
            ):
                common = Path(git(repository, "rev-parse", "--git-common-dir").strip())
                if not common.is_absolute():
                    common = repository / common
                for admin in (common / "worktrees").iterdir():
                    try:
                        gitdir = (admin / "gitdir").read_text().strip()
                    except OSError:
                        continue
                    if os.path.realpath(os.path.dirname(gitdir)) == os.path.realpath(path):
                        shutil.rmtree(admin, ignore_errors=True)


def _entries_of(directory: Path) -> list[Path]:
    """The entries of `directory`, or none when it is gone."""
    return list(directory.iterdir()) if directory.is_dir() else []
