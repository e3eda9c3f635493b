"""Git worktrees for agent sessions: create, reuse, list and remove them under `worktrees_root`.

Operations on one repository are serialized with an asyncio.Lock (concurrent
`git worktree add` calls trip over git's lock files otherwise) and run in a worker
thread; git itself runs through daemon/git_commands.py. Repository paths and clone
URLs are resolved by daemon/repositories.py before they get here.

With `pool_size > 0` a new branch is started in a ready worktree from the
WorktreePool (moved into place, then the branch created in it), so launch time does
not grow with the repository; see daemon/worktree_pool.py.

Size: ensure() (a fast path and the full checks), the claim of a pooled worktree, undo, listing and
removal: every git change to a repository's worktrees, under its one lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git as gitpython
from git.refs.symbolic import SymbolicReference

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.git_commands import GitError, WorktreeEntry, git, git_version, list_worktrees, run, succeeds
from daemon.repositories import main_repository, safe_name, short_hash
from daemon.validation import validate_base_ref, validate_worktree_name
from daemon.worktree_pool import REPO_MARKER, PoolMember, PoolStats, WorktreePool

__all__ = ["ListedWorktree", "WorktreeInfo", "Worktrees"]

log = logging.getLogger(__name__)


@dataclass
class WorktreeInfo:
    """A worktree of a repository checked out on `branch`."""

    path: Path
    branch: str
    repository: Path
    base_commit: str
    created: bool  # False when an existing worktree was reused
    branch_created: bool = False  # ensure() created the branch (rollback deletes it)
    pooled: bool = False  # made from a ready worktree of the pool
    # Registered (branch, HEAD, .git file) but its files not written yet: populate() does that.
    checkout_pending: bool = False


@dataclass(frozen=True)
class ListedWorktree:
    """A worktree this daemon made for a repository, as git lists it."""

    path: Path
    branch: str
    dirty: bool


@dataclass
class _Claim:
    """A pooled worktree handed to one ensure() call, and what became of it."""

    member: PoolMember | None
    state: Literal["unused", "tried", "used", "lost", "refused"] = "unused"
    reason: str = ""
    head: str = ""  # HEAD's commit, when ensure() resolved it


def _same_path(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _find_entry(repository: Path, path: Path) -> WorktreeEntry | None:
    for entry in list_worktrees(repository):
        if _same_path(entry.path, path):
            return entry
    return None


def _branch_exists(repository: Path, branch: str) -> bool:
    return succeeds(repository, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def _rev_parse(repository: Path, rev: str) -> str | None:
    found = run(repository, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return found.stdout.strip() or None if found.ok else None


def _ref_commit(repo: gitpython.Repo, ref: str) -> str | None:
    """The commit a ref names, read from the ref files without starting git (None: no such ref)."""
    try:
        return SymbolicReference.dereference_recursive(repo, ref)
    except (ValueError, OSError):
        return None


def _checkout(path: Path, commit: str) -> None:
    """What `git worktree add` does after registering a worktree: write files and index, run the hook."""
    git(path, "reset", "--hard", "--quiet", "--no-recurse-submodules")
    git(path, "hook", "run", "--ignore-missing", "post-checkout", "--", "0" * 40, commit, "1")


class Worktrees:
    """Creates, lists and removes worktrees under `worktrees_root`, with a pool of ready ones."""

    def __init__(
        self,
        worktrees_root: Path,
        pool_size: int = 0,
        *,
        pool_repositories: int = 4,
        pool_refresh_seconds: float = 10.0,
        pool_retry_seconds: float = 60.0,
    ) -> None:
        self.worktrees_root = Path(worktrees_root).expanduser()
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False
        self.pool = WorktreePool(
            self.worktrees_root,
            pool_size,
            lock_for=self._lock,
            repo_dir=self._repo_dir,
            max_repositories=pool_repositories,
            refresh_seconds=pool_refresh_seconds,
            retry_seconds=pool_retry_seconds,
        )

    def repository_lock(self, repository: Path) -> asyncio.Lock:
        """The lock every git change in `repository` (and its worktrees) is made under."""
        return self._lock(str(repository))

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _check_open(self) -> None:
        if self._closed:
            raise FailedPrecondition("worktree manager is closed")

    def _repo_dir(self, repository: Path) -> Path:
        real = os.path.realpath(repository)
        key = f"{safe_name(os.path.basename(real))}-{short_hash(real)}"
        return self.worktrees_root.resolve() / key

    def worktree_path(self, repository: Path, name: str) -> Path:
        """Where ensure() puts the worktree `name` of `repository`."""
        return self._repo_dir(repository) / name.replace("/", "--")

    # ---- the pool of ready worktrees ------------------------------------

    async def warm(self, repository: Path) -> None:
        """Start keeping ready worktrees for `repository` (no-op when the pool size is 0)."""
        self._check_open()
        repository = Path(os.path.realpath(repository))
        async with self._lock(str(repository)):
            self.pool.touch(repository)

    async def wait_pool_ready(self, repository: Path, count: int | None = None, timeout: float = 120.0) -> None:
        """Wait until `repository` has `count` (default: pool size) ready worktrees at HEAD."""
        await self.pool.wait_ready(Path(os.path.realpath(repository)), count, timeout)

    def pool_stats(self) -> dict[Path, PoolStats]:
        """Ready/pending pooled worktrees per repository."""
        return self.pool.stats()

    async def set_pool_size(self, size: int) -> None:
        """Change how many ready worktrees each repository keeps; 0 removes them all."""
        await self.pool.set_size(size)

    # ---- creating -----------------------------------------------------

    async def ensure(
        self, repository: Path, name: str, base_ref: str = "", *, defer_checkout: bool = False
    ) -> WorktreeInfo:
        """Reuse or create the worktree `name` (also the branch name) of `repository`.

        An existing branch is checked out as is (base_ref is then ignored); a new
        branch starts at base_ref, or HEAD when empty. With `defer_checkout`, a worktree
        that does not come from the pool is only registered (`checkout_pending`); the
        caller writes its files with populate(), outside the repository lock.
        """
        self._check_open()
        validate_worktree_name(name)
        validate_base_ref(base_ref)
        repository = Path(os.path.realpath(repository))
        path = self.worktree_path(repository, name)
        async with self._lock(str(repository)):
            self.pool.touch(repository)
            claim = _Claim(self.pool.take(repository))
            try:
                return await asyncio.to_thread(
                    self._ensure_sync, repository, name, base_ref, path, claim, defer_checkout
                )
            finally:
                self._settle(repository, claim)

    def _settle(self, repository: Path, claim: _Claim) -> None:
        """Tell the pool what ensure() did with the worktree it was given."""
        if claim.head:
            self.pool.head_seen(repository, claim.head)
        if claim.member is None:
            return
        if claim.state in ("unused", "tried"):
            self.pool.give_back(repository, claim.member)
        elif claim.state == "refused":
            self.pool.refused(repository, claim.member, claim.reason)
        else:
            self.pool.claimed(repository, used=claim.state == "used")

    def _ensure_sync(
        self, repository: Path, name: str, base_ref: str, path: Path, claim: _Claim, defer: bool
    ) -> WorktreeInfo:
        try:
            repo = gitpython.Repo(repository)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
            raise FailedPrecondition(f"repository is not a git repository: {repository}") from None
        with repo:
            info = self._new_branch_fast(repo, repository, name, base_ref, path, claim, defer)
        if info is not None:
            return info
        entries = list_worktrees(repository)
        # A worktree whose directory vanished still holds its branch: prune it first.
        if any(e.prunable and (_same_path(e.path, path) or e.branch == name) for e in entries):
            git(repository, "worktree", "prune")
            entries = list_worktrees(repository)
        entry = next((e for e in entries if _same_path(e.path, path)), None)
        if entry is not None:
            if entry.branch != name:
                raise FailedPrecondition(
                    f"worktree {path} is checked out on {entry.branch or 'a detached HEAD'!s}, not {name}"
                )
            return WorktreeInfo(path, name, repository, entry.head, created=False)
        if path.exists():
            raise FailedPrecondition(f"worktree path {path} exists but is not the worktree of branch {name}")
        for other in entries:
            if other.branch == name:
                raise FailedPrecondition(f"branch {name} is already checked out at {other.path}")
        if _branch_exists(repository, name):
            base = _rev_parse(repository, f"refs/heads/{name}") or ""
            return self._add(repository, path, name, base, new_branch=False, defer=defer)
        if base_ref:
            found = _rev_parse(repository, base_ref)
            if found is None:
                raise InvalidArgument("base_ref", f"no commit {base_ref!r} in {repository}")
            base = found
        else:
            head = _rev_parse(repository, "HEAD")
            if head is None:
                raise FailedPrecondition(f"repository {repository} has no commits")
            base = claim.head = head
        if (
            claim.member is not None
            and claim.state == "unused"
            and (pooled := self._claim(repository, claim, path, name, base)) is not None
        ):
            return pooled
        return self._add(repository, path, name, base, new_branch=True, defer=defer)

    def _new_branch_fast(
        self,
        repo: gitpython.Repo,
        repository: Path,
        name: str,
        base_ref: str,
        path: Path,
        claim: _Claim,
        defer: bool,
    ) -> WorktreeInfo | None:
        """The launch path's common case in one to three short git processes, or None for the full path.

        Applies when nothing is at `path`, branch `name` does not exist and the base is HEAD (or a
        branch) whose commit the ref files give without starting git: then no other worktree can
        hold the branch, so `git worktree list` and the other checks of the full path are not needed.
        Anything unusual (git refusing a step included) is left to the full path, with nothing changed.
        """
        if os.path.lexists(path) or _ref_commit(repo, f"refs/heads/{name}") is not None:
            return None
        base = _ref_commit(repo, f"refs/heads/{base_ref}" if base_ref else "HEAD")
        if base is None:
            return None
        if not base_ref:
            claim.head = base
        if claim.member is not None and claim.member.commit == base:
            return self._claim(repository, claim, path, name, base)
        if not defer:
            return None
        return self._add(repository, path, name, base, new_branch=True, defer=True)

    def _claim(self, repository: Path, claim: _Claim, path: Path, name: str, base: str) -> WorktreeInfo | None:
        """Move the pooled worktree to `path` and start branch `name` at `base` in it: the one claim path.

        Milliseconds at any repository size: the move is a rename; at the worktree's own commit the
        branch is created and HEAD pointed at it (no file or index read or written); at another commit
        `checkout -b` rewrites only the files that differ. None when git refuses a step, with the member
        back in place (or reported lost or refused) and no branch left; the caller then adds a worktree.
        """
        member = claim.member
        assert member is not None
        claim.state = "tried"
        self._mark_repo_dir(repository, path)
        moved = run(repository, "worktree", "move", "--", str(member.path), str(path))
        if not moved.ok:
            if not member.path.exists():
                # Deleted behind our back: forget its registration, keep pooling.
                claim.state = "lost"
                run(repository, "worktree", "prune")
            else:
                # e.g. git refuses to move a locked worktree: it never will.
                claim.state, claim.reason = "refused", GitError(("worktree", "move"), moved.status, moved.stderr).reason
            return None
        try:
            if member.commit == base:
                git(repository, "branch", "--no-track", "--", name, base)
                try:
                    git(
                        path,
                        "symbolic-ref",
                        "-m",
                        f"checkout: moving from {base} to {name}",
                        "HEAD",
                        f"refs/heads/{name}",
                    )
                except GitError:
                    self._delete_branch(repository, name)
                    raise
            else:
                git(path, "checkout", "--quiet", "-b", name, base)
        except GitError as exc:
            log.info("pooled worktree not usable for %s: %s", name, exc)
            if not run(repository, "worktree", "move", "--", str(path), str(member.path)).ok:
                claim.state = "lost"
                self._undo(repository, path, None)
            return None
        claim.state = "used"
        log.info("created worktree %s (branch %s at %s) from the pool", path, name, base[:12])
        return WorktreeInfo(path, name, repository, base, created=True, branch_created=True, pooled=True)

    def _add(
        self, repository: Path, path: Path, name: str, base: str, *, new_branch: bool, defer: bool
    ) -> WorktreeInfo:
        """`git worktree add` at `path` (only registered when `defer`); on failure nothing is left behind."""
        self._mark_repo_dir(repository, path)
        args = ["worktree", "add", "--quiet"] + (["--no-checkout"] if defer else [])
        args += ["-b", name, "--", str(path), base] if new_branch else ["--", str(path), name]
        try:
            git(repository, *args)
        except GitError as exc:
            self._undo(
                repository, path, name if new_branch and _rev_parse(repository, f"refs/heads/{name}") == base else None
            )
            raise FailedPrecondition(f"git worktree add failed for {name}: {exc.reason}") from None
        log.info("created worktree %s (branch %s at %s)%s", path, name, base[:12], ", files to follow" if defer else "")
        return WorktreeInfo(
            path, name, repository, base, created=True, branch_created=new_branch, checkout_pending=defer
        )

    @staticmethod
    def _delete_branch(repository: Path, name: str) -> None:
        try:
            git(repository, "branch", "-D", "--", name)
        except GitError as exc:
            log.warning("could not delete branch %s: %s", name, exc)

    @staticmethod
    def _mark_repo_dir(repository: Path, path: Path) -> None:
        """Create the per-repository directory with its marker naming the repository."""
        path.parent.mkdir(parents=True, exist_ok=True)
        marker = path.parent / REPO_MARKER
        if not marker.exists():
            marker.write_text(str(repository) + "\n")

    async def populate(self, info: WorktreeInfo) -> None:
        """Write the files and index of a worktree ensure() left `checkout_pending`.

        The same steps `git worktree add` takes after registering a worktree: `reset --hard`,
        then the post-checkout hook. Runs outside the repository lock (it touches only this
        worktree's files and index), so other launches on the repository are not held up.
        """
        if not info.checkout_pending:
            return
        await asyncio.to_thread(_checkout, info.path, info.base_commit)
        info.checkout_pending = False

    async def finish_checkout(self, path: Path) -> None:
        """Write the files of a worktree whose populate() was cut short (no-op when it is gone).

        Only for worktrees no agent has run in: `reset --hard` discards changes.
        """
        if path.is_dir():
            await asyncio.to_thread(lambda: _checkout(path, git(path, "rev-parse", "HEAD").strip()))

    # ---- undoing and removing -------------------------------------------

    @staticmethod
    def _undo(repository: Path, path: Path, branch: str | None) -> None:
        """Best effort: remove the worktree at `path` and, if given, the branch."""
        try:
            if _find_entry(repository, path) is not None:
                git(repository, "worktree", "remove", "--force", "--force", str(path))
        except GitError as exc:
            log.warning("could not remove worktree %s: %s", path, exc)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            git(repository, "worktree", "prune")
            if branch and _branch_exists(repository, branch):
                git(repository, "branch", "-D", "--", branch)
        except GitError as exc:
            log.warning("could not delete branch %s: %s", branch, exc)

    async def rollback(self, info: WorktreeInfo) -> None:
        """Undo an ensure() that created things (a reused worktree is left alone)."""
        if not info.created:
            return
        async with self._lock(str(info.repository)):
            await asyncio.to_thread(
                self._undo, info.repository, info.path, info.branch if info.branch_created else None
            )

    def _repository_of(self, path: Path) -> Path:
        """The repository owning the managed worktree at `path` (NotFound otherwise)."""
        root = self.worktrees_root.resolve()
        if not path.is_relative_to(root) or len(path.relative_to(root).parts) != 2:
            raise NotFound(f"not a worktree managed by this daemon: {path}")
        marker = path.parent / REPO_MARKER
        try:
            return Path(marker.read_text().strip())
        except OSError:
            raise NotFound(f"not a worktree managed by this daemon: {path}") from None

    async def listed(self, repository: Path) -> list[ListedWorktree]:
        """The worktrees of `repository` that live in this daemon's directory for it (ensure()'s and the
        pool's), with whether each has uncommitted work."""
        self._check_open()
        repository = Path(os.path.realpath(repository))
        async with self._lock(str(repository)):
            return await asyncio.to_thread(self._listed_sync, repository)

    def _listed_sync(self, repository: Path) -> list[ListedWorktree]:
        home = self._repo_dir(repository)
        entries = [e for e in list_worktrees(repository) if e.path.parent == home and not e.prunable]
        return [ListedWorktree(e.path, e.branch, self._dirty_sync(e.path)) for e in entries if e.path.is_dir()]

    async def remove(
        self, path: Path, *, force: bool = False, delete_branch: bool = False, delete_branch_if_merged: bool = False
    ) -> tuple[str, bool]:
        """Remove a worktree made by ensure(); return (branch, branch_deleted).

        A dirty worktree (modified or untracked files) is refused unless `force`. The branch goes too with
        `delete_branch`, or with `delete_branch_if_merged` when another branch holds its commits.
        """
        self._check_open()
        path = Path(os.path.realpath(Path(path).expanduser()))
        repository = self._repository_of(path)
        async with self._lock(str(repository)):
            return await asyncio.to_thread(
                self._remove_sync, repository, path, force, delete_branch, delete_branch_if_merged
            )

    @staticmethod
    def _merged_elsewhere(repository: Path, branch: str) -> bool:
        """Whether another local branch contains `branch`'s tip (deleting it then loses no commit)."""
        holders = git(
            repository, "for-each-ref", "--format=%(refname)", f"--contains=refs/heads/{branch}", "refs/heads/"
        )
        return any(ref != f"refs/heads/{branch}" for ref in holders.splitlines())

    def _remove_sync(
        self, repository: Path, path: Path, force: bool, delete_branch: bool, delete_branch_if_merged: bool = False
    ) -> tuple[str, bool]:
        try:
            main_repository(repository)
        except FailedPrecondition:
            raise NotFound(f"repository of worktree {path} is gone: {repository}") from None
        entry = _find_entry(repository, path)
        if entry is None or _same_path(entry.path, repository):
            raise NotFound(f"not a worktree of {repository}: {path}")
        if entry.prunable:
            git(repository, "worktree", "prune")
        else:
            if not force and self._dirty_sync(path):
                raise FailedPrecondition(
                    f"worktree {path} has uncommitted or untracked changes; use force to remove it"
                )
            args = ["worktree", "remove"] + (["--force", "--force"] if force else []) + ["--", str(path)]
            try:
                git(repository, *args)
            except GitError as exc:
                raise FailedPrecondition(f"cannot remove worktree {path}: {exc.reason}") from None
        branch = entry.branch
        if not branch or not _branch_exists(repository, branch):
            delete_branch = False
        elif not delete_branch and delete_branch_if_merged:
            delete_branch = self._merged_elsewhere(repository, branch)
        if delete_branch:
            try:
                git(repository, "branch", "-D", "--", branch)
            except GitError as exc:
                raise FailedPrecondition(
                    f"worktree removed but branch {branch} was not deleted: {exc.reason}"
                ) from None
        log.info("removed worktree %s (branch %s, deleted=%s)", path, branch, delete_branch)
        return branch, delete_branch

    async def is_dirty(self, path: Path) -> bool:
        """True when the worktree has modified, staged or untracked files."""
        return await asyncio.to_thread(self._dirty_sync, Path(path))

    @staticmethod
    def _dirty_sync(path: Path) -> bool:
        status = run(path, "status", "--porcelain", "--untracked-files=normal")
        if not status.ok:
            raise NotFound(f"not a git worktree: {path}")
        return bool(status.stdout)

    async def git_version(self) -> str:
        """The installed git's version, e.g. "2.39.5"."""
        return await asyncio.to_thread(git_version)

    async def close(self) -> None:
        """Refuse further operations, wait for running ones, remove pooled worktrees. Idempotent."""
        self._closed = True
        for lock in list(self._locks.values()):
            async with lock:
                pass
        await self.pool.close()
