"""Git worktrees for agent sessions: resolve/clone repositories, create, reuse and remove worktrees.

GitPython leaks resources when objects live long, so every operation opens a
fresh `git.Repo`, closes it, and runs in a worker thread. Operations on one
repository are serialized with an asyncio.Lock (concurrent `git worktree add`
calls trip over git's lock files otherwise).

With `pool_size > 0` a new branch is started in a ready worktree from the
WorktreePool (moved into place, then `git checkout -b`), so launch time does
not grow with the repository; see daemon/worktree_pool.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git
from git.refs.symbolic import SymbolicReference

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.validation import validate_base_ref, validate_worktree_name
from daemon.worktree_pool import GitFailed, PoolMember, PoolStats, WorktreePool, run_git

__all__ = ["ListedWorktree", "WorktreeInfo", "Worktrees", "is_clone_url"]

log = logging.getLogger(__name__)

# Never let git wait for a password or a host-key prompt: the daemon has no terminal.
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
}
_URL_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:(?!//)\S+$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Written in each per-repository directory under worktrees_root, so a worktree
# whose directory has vanished can still be traced back to its repository.
_REPO_MARKER = ".berth-repository"


def is_clone_url(repository: str) -> bool:
    """True when `repository` is a clone URL rather than a local path."""
    return repository.startswith(_URL_SCHEMES) or bool(_SCP_LIKE.match(repository))


def _redact(url: str) -> str:
    """The URL without any user:password part (for error messages)."""
    return re.sub(r"://[^/@]+@", "://***@", url)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]


def _safe_name(text: str) -> str:
    name = _UNSAFE_NAME_CHARS.sub("-", text).lstrip(".-") or "repo"
    return name[:60]


def _git_error(exc: git.GitCommandError) -> str:
    """The useful last line of a failed git command's stderr."""
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    text = lines[-1] if lines else str(exc)
    return text.removeprefix("stderr: ").strip("'").strip()


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
    state: Literal["unused", "used", "lost", "refused"] = "unused"
    reason: str = ""
    head: str = ""  # HEAD's commit, when ensure() resolved it


@dataclass
class _Entry:
    """One record of `git worktree list --porcelain`."""

    path: Path
    head: str = ""
    branch: str = ""  # short name; "" when detached or bare
    bare: bool = False
    prunable: bool = False


def _run(repo: git.Repo, *args: str) -> str:
    return repo.git.execute(["git", *args], env=_GIT_ENV)


def _list_worktrees(repo: git.Repo) -> list[_Entry]:
    entries: list[_Entry] = []
    for line in _run(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            entries.append(_Entry(path=Path(line[len("worktree ") :])))
        elif not entries:
            continue
        elif line.startswith("HEAD "):
            entries[-1].head = line[len("HEAD ") :]
        elif line.startswith("branch "):
            entries[-1].branch = line[len("branch ") :].removeprefix("refs/heads/")
        elif line == "bare":
            entries[-1].bare = True
        elif line.startswith("prunable"):
            entries[-1].prunable = True
    return entries


def _same_path(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _find_entry(repo: git.Repo, path: Path) -> _Entry | None:
    for entry in _list_worktrees(repo):
        if _same_path(entry.path, path):
            return entry
    return None


def _branch_exists(repo: git.Repo, branch: str) -> bool:
    try:
        _run(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")
    except git.GitCommandError:
        return False
    return True


def _rev_parse(repo: git.Repo, rev: str) -> str | None:
    try:
        return _run(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") or None
    except git.GitCommandError:
        return None


def _ref_commit(repo: git.Repo, ref: str) -> str | None:
    """The commit a ref names, read from the ref files without starting git (None: no such ref)."""
    try:
        return SymbolicReference.dereference_recursive(repo, ref)
    except (ValueError, OSError):
        return None


def _checkout(path: Path, commit: str) -> None:
    """What `git worktree add` does after registering a worktree: write files and index, run the hook."""
    run_git(path, "reset", "--hard", "--quiet", "--no-recurse-submodules")
    run_git(path, "hook", "run", "--ignore-missing", "post-checkout", "--", "0" * 40, commit, "1")


def _main_repository(repo: git.Repo) -> Path:
    """The main working tree (or bare git dir) of the repository `repo` belongs to."""
    common = Path(repo.common_dir).resolve()
    if repo.bare:
        return common
    if common.name == ".git":
        return common.parent
    assert repo.working_tree_dir is not None  # not bare
    return Path(repo.working_tree_dir).resolve()


class Worktrees:
    """Creates and removes worktrees under `worktrees_root`; clones URLs into `repos_root`."""

    def __init__(
        self,
        repos_root: Path,
        worktrees_root: Path,
        pool_size: int = 0,
        *,
        pool_repositories: int = 4,
        pool_refresh_seconds: float = 10.0,
    ) -> None:
        self.repos_root = Path(repos_root).expanduser()
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

    # ---- repositories -------------------------------------------------

    async def resolve_repository(self, repository: str) -> Path:
        """The local repository for a path or clone URL (cloned once into repos_root)."""
        self._check_open()
        if not isinstance(repository, str) or not repository.strip():
            raise InvalidArgument("repository", "must be a local path or a clone URL")
        if "\x00" in repository or "\n" in repository:
            raise InvalidArgument("repository", "must not contain NUL or newline characters")
        if is_clone_url(repository):
            return await self._clone_once(repository)
        path = Path(repository).expanduser()
        if not path.is_absolute():
            raise InvalidArgument("repository", f"must be an absolute path or a clone URL (got {repository!r})")
        return await asyncio.to_thread(self._open_local, path, repository)

    @staticmethod
    def _open_local(path: Path, original: str) -> Path:
        if not path.exists():
            raise NotFound(f"repository not found: {original}")
        if not path.is_dir():
            raise FailedPrecondition(f"repository is not a directory: {original}")
        try:
            with git.Repo(path) as repo:
                return _main_repository(repo)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise FailedPrecondition(f"repository is not a git repository: {original}") from None

    async def known_repository(self, repository: str) -> Path | None:
        """Like resolve_repository(), but None for a clone URL that was never cloned (nothing is fetched)."""
        if isinstance(repository, str) and is_clone_url(repository) and not self._clone_target(repository).exists():
            return None
        return await self.resolve_repository(repository)

    def _clone_target(self, url: str) -> Path:
        stem = url.rstrip("/").removesuffix(".git")
        stem = re.split(r"[/:]", stem)[-1]
        return self.repos_root / f"{_safe_name(stem)}-{_short_hash(url)}"

    async def _clone_once(self, url: str) -> Path:
        target = self._clone_target(url)
        async with self._lock(f"clone:{target}"):
            return await asyncio.to_thread(self._clone_sync, url, target)

    def _clone_sync(self, url: str, target: Path) -> Path:
        if target.exists():
            try:
                with git.Repo(target) as repo:
                    return _main_repository(repo)
            except git.InvalidGitRepositoryError:
                raise FailedPrecondition(f"clone directory {target} exists but is not a git repository") from None
        self.repos_root.mkdir(parents=True, exist_ok=True)
        # Clone beside the target and rename, so a failed clone leaves nothing behind.
        tmp = self.repos_root / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            with git.Repo.clone_from(url, tmp, env=_GIT_ENV):
                pass
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
                # An earlier, abandoned call finished the same clone first; use that one.
        except git.GitCommandError as exc:
            raise NotFound(f"repository cannot be cloned: {_redact(url)}: {_redact(_git_error(exc))}") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("cloned %s into %s", _redact(url), target)
        return target.resolve()

    # ---- worktrees ----------------------------------------------------

    def _repo_dir(self, repository: Path) -> Path:
        real = os.path.realpath(repository)
        key = f"{_safe_name(os.path.basename(real))}-{_short_hash(real)}"
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
        if claim.state == "unused":
            self.pool.give_back(repository, claim.member)
        elif claim.state == "refused":
            self.pool.disable(repository, claim.reason)
            self.pool.give_back(repository, claim.member)
        else:
            self.pool.claimed(repository)

    def _ensure_sync(
        self,
        repository: Path,
        name: str,
        base_ref: str,
        path: Path,
        claim: _Claim | None = None,
        defer_checkout: bool = False,
    ) -> WorktreeInfo:
        try:
            repo = git.Repo(repository)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise FailedPrecondition(f"repository is not a git repository: {repository}") from None
        with repo:
            info = self._new_branch_fast(repo, repository, name, base_ref, path, claim, defer_checkout)
            if info is not None:
                return info
            entries = _list_worktrees(repo)
            # A worktree whose directory vanished still holds its branch: prune it first.
            if any(e.prunable and (_same_path(e.path, path) or e.branch == name) for e in entries):
                _run(repo, "worktree", "prune")
                entries = _list_worktrees(repo)
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
            if _branch_exists(repo, name):
                base = _rev_parse(repo, f"refs/heads/{name}") or ""
                return self._create(repo, repository, path, name, base, new_branch=False, defer=defer_checkout)
            if base_ref:
                found = _rev_parse(repo, base_ref)
                if found is None:
                    raise InvalidArgument("base_ref", f"no commit {base_ref!r} in {repository}")
                base = found
            else:
                head = _rev_parse(repo, "HEAD")
                if head is None:
                    raise FailedPrecondition(f"repository {repository} has no commits")
                base = head
                if claim is not None:
                    claim.head = base
            return self._create(repo, repository, path, name, base, new_branch=True, claim=claim, defer=defer_checkout)

    def _new_branch_fast(
        self,
        repo: git.Repo,
        repository: Path,
        name: str,
        base_ref: str,
        path: Path,
        claim: _Claim | None,
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
        if claim is not None and not base_ref:
            claim.head = base
        member = claim.member if claim is not None else None
        if claim is not None and member is not None and member.commit == base:
            return self._claim_fast(repository, claim, path, name, base)
        if not defer:
            return None
        self._mark_repo_dir(repository, path)
        try:
            run_git(repository, "worktree", "add", "--quiet", "--no-checkout", "-b", name, "--", str(path), base)
        except GitFailed as exc:
            self._undo(repo, path, name if _ref_commit(repo, f"refs/heads/{name}") == base else None)
            raise FailedPrecondition(f"git worktree add failed for {name}: {exc}") from None
        log.info("registered worktree %s (branch %s at %s), files to follow", path, name, base[:12])
        return WorktreeInfo(path, name, repository, base, created=True, branch_created=True, checkout_pending=True)

    def _claim_fast(self, repository: Path, claim: _Claim, path: Path, name: str, base: str) -> WorktreeInfo | None:
        """Start branch `name` at the pooled worktree's own commit and move the worktree to `path`.

        No file or index is read or written (a rename and two ref writes). None, with the member
        back in place and no branch left, when git refuses a step.
        """
        member = claim.member
        assert member is not None
        self._mark_repo_dir(repository, path)
        try:
            run_git(repository, "branch", "--no-track", "--", name, base)
        except GitFailed:
            return None
        try:
            run_git(repository, "worktree", "move", "--", str(member.path), str(path))
        except GitFailed:
            self._delete_branch(repository, name)
            return None
        try:
            run_git(path, "symbolic-ref", "-m", f"checkout: moving from {base} to {name}", "HEAD", f"refs/heads/{name}")
        except GitFailed:
            try:
                run_git(repository, "worktree", "move", "--", str(path), str(member.path))
            except GitFailed:
                claim.state = "lost"
                with git.Repo(repository) as repo:
                    self._undo(repo, path, None)
            self._delete_branch(repository, name)
            return None
        claim.state = "used"
        log.info("created worktree %s (branch %s at %s) from the pool", path, name, base[:12])
        return WorktreeInfo(path, name, repository, base, created=True, branch_created=True, pooled=True)

    @staticmethod
    def _delete_branch(repository: Path, name: str) -> None:
        try:
            run_git(repository, "branch", "-D", "--", name)
        except GitFailed as exc:
            log.warning("could not delete branch %s: %s", name, exc)

    @staticmethod
    def _mark_repo_dir(repository: Path, path: Path) -> None:
        """Create the per-repository directory with its marker naming the repository."""
        path.parent.mkdir(parents=True, exist_ok=True)
        marker = path.parent / _REPO_MARKER
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
            await asyncio.to_thread(lambda: _checkout(path, run_git(path, "rev-parse", "HEAD")))

    def _create(
        self,
        repo: git.Repo,
        repository: Path,
        path: Path,
        name: str,
        base: str,
        *,
        new_branch: bool,
        claim: _Claim | None = None,
        defer: bool = False,
    ) -> WorktreeInfo:
        """Add the worktree at `path` (from the pool when `claim` holds a ready one; only
        registered when `defer`).

        On failure leave no directory or branch behind.
        """
        self._mark_repo_dir(repository, path)
        if (
            new_branch
            and claim is not None
            and claim.member is not None
            and self._claim_sync(repo, claim, path, name, base)
        ):
            log.info("created worktree %s (branch %s at %s) from the pool", path, name, base[:12])
            return WorktreeInfo(path, name, repository, base, created=True, branch_created=True, pooled=True)
        args = ["worktree", "add", "--quiet"] + (["--no-checkout"] if defer else [])
        args += ["-b", name, "--", str(path), base] if new_branch else ["--", str(path), name]
        try:
            _run(repo, *args)
        except git.GitCommandError as exc:
            self._undo(repo, path, name if new_branch else None)
            raise FailedPrecondition(f"git worktree add failed for {name}: {_git_error(exc)}") from None
        log.info("created worktree %s (branch %s at %s)", path, name, base[:12])
        return WorktreeInfo(
            path, name, repository, base, created=True, branch_created=new_branch, checkout_pending=defer
        )

    def _claim_sync(self, repo: git.Repo, claim: _Claim, path: Path, name: str, base: str) -> bool:
        """Move the pooled worktree to `path` and start branch `name` at `base` in it.

        Both steps take milliseconds at any repository size: the move is a rename, and at
        the worktree's own commit the branch is created and HEAD pointed at it (no file or
        index touched); at another commit `checkout -b` rewrites only the files that differ. False
        (and the pool member back in place or gone) when git refuses; the caller then falls back to
        `git worktree add`.
        """
        member = claim.member
        assert member is not None
        try:
            _run(repo, "worktree", "move", "--", str(member.path), str(path))
        except git.GitCommandError as exc:
            if not member.path.exists():
                # Deleted behind our back: forget its registration, keep pooling.
                claim.state = "lost"
                try:
                    _run(repo, "worktree", "prune")
                except git.GitCommandError:
                    pass
                return False
            # e.g. git refuses to move a locked worktree: it never will.
            claim.state, claim.reason = "refused", _git_error(exc)
            return False
        try:
            if member.commit == base:
                # Same commit: create the branch and point HEAD at it. Unlike `checkout -b`
                # this never reads or rewrites the index (100 ms at 50k files).
                _run(repo, "branch", "--no-track", "--", name, base)
                try:
                    _run(
                        repo,
                        "-C",
                        str(path),
                        "symbolic-ref",
                        "-m",
                        f"checkout: moving from {base} to {name}",
                        "HEAD",
                        f"refs/heads/{name}",
                    )
                except git.GitCommandError:
                    _run(repo, "branch", "-D", "--", name)
                    raise
            else:
                _run(repo, "-C", str(path), "checkout", "--quiet", "-b", name, base)
        except git.GitCommandError as exc:
            log.info("pooled worktree not usable for %s: %s", name, _git_error(exc))
            try:
                _run(repo, "worktree", "move", "--", str(path), str(member.path))
            except git.GitCommandError:
                claim.state = "lost"
                self._undo(repo, path, None)
            return False
        claim.state = "used"
        return True

    @staticmethod
    def _undo(repo: git.Repo, path: Path, branch: str | None) -> None:
        """Best effort: remove the worktree at `path` and, if given, the branch."""
        try:
            if _find_entry(repo, path) is not None:
                _run(repo, "worktree", "remove", "--force", "--force", str(path))
        except git.GitCommandError as exc:
            log.warning("could not remove worktree %s: %s", path, _git_error(exc))
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            _run(repo, "worktree", "prune")
            if branch and _branch_exists(repo, branch):
                _run(repo, "branch", "-D", "--", branch)
        except git.GitCommandError as exc:
            log.warning("could not delete branch %s: %s", branch, _git_error(exc))

    async def rollback(self, info: WorktreeInfo) -> None:
        """Undo an ensure() that created things (a reused worktree is left alone)."""
        if not info.created:
            return
        async with self._lock(str(info.repository)):
            await asyncio.to_thread(self._rollback_sync, info)

    def _rollback_sync(self, info: WorktreeInfo) -> None:
        with git.Repo(info.repository) as repo:
            self._undo(repo, info.path, info.branch if info.branch_created else None)

    def _repository_of(self, path: Path) -> Path:
        """The repository owning the managed worktree at `path` (NotFound otherwise)."""
        root = self.worktrees_root.resolve()
        if not path.is_relative_to(root) or len(path.relative_to(root).parts) != 2:
            raise NotFound(f"not a worktree managed by this daemon: {path}")
        marker = path.parent / _REPO_MARKER
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
        with git.Repo(repository) as repo:
            entries = [e for e in _list_worktrees(repo) if e.path.parent == home and not e.prunable]
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
    def _merged_elsewhere(repo: git.Repo, branch: str) -> bool:
        """Whether another local branch contains `branch`'s tip (deleting it then loses no commit)."""
        holders = _run(repo, "for-each-ref", "--format=%(refname)", f"--contains=refs/heads/{branch}", "refs/heads/")
        return any(ref != f"refs/heads/{branch}" for ref in holders.splitlines())

    def _remove_sync(
        self, repository: Path, path: Path, force: bool, delete_branch: bool, delete_branch_if_merged: bool = False
    ) -> tuple[str, bool]:
        try:
            repo = git.Repo(repository)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotFound(f"repository of worktree {path} is gone: {repository}") from None
        with repo:
            entry = _find_entry(repo, path)
            if entry is None or _same_path(entry.path, repository):
                raise NotFound(f"not a worktree of {repository}: {path}")
            if entry.prunable:
                _run(repo, "worktree", "prune")
            else:
                if not force and self._dirty_sync(path):
                    raise FailedPrecondition(
                        f"worktree {path} has uncommitted or untracked changes; use force to remove it"
                    )
                args = ["worktree", "remove"] + (["--force", "--force"] if force else []) + ["--", str(path)]
                try:
                    _run(repo, *args)
                except git.GitCommandError as exc:
                    raise FailedPrecondition(f"cannot remove worktree {path}: {_git_error(exc)}") from None
            deleted = False
            if (
                not delete_branch
                and delete_branch_if_merged
                and entry.branch
                and _branch_exists(repo, entry.branch)
                and self._merged_elsewhere(repo, entry.branch)
            ):
                delete_branch = True
            if delete_branch and entry.branch and _branch_exists(repo, entry.branch):
                try:
                    _run(repo, "branch", "-D", "--", entry.branch)
                    deleted = True
                except git.GitCommandError as exc:
                    raise FailedPrecondition(
                        f"worktree removed but branch {entry.branch} was not deleted: {_git_error(exc)}"
                    ) from None
        log.info("removed worktree %s (branch %s, deleted=%s)", path, entry.branch, deleted)
        return entry.branch, deleted

    async def is_dirty(self, path: Path) -> bool:
        """True when the worktree has modified, staged or untracked files."""
        return await asyncio.to_thread(self._dirty_sync, Path(path))

    @staticmethod
    def _dirty_sync(path: Path) -> bool:
        try:
            repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotFound(f"not a git worktree: {path}") from None
        with repo:
            return bool(_run(repo, "status", "--porcelain", "--untracked-files=normal"))

    async def git_version(self) -> str:
        """The installed git's version, e.g. "2.39.5"."""

        def version() -> str:
            out = git.Git().execute(["git", "--version"])
            return out.removeprefix("git version ").strip()

        return await asyncio.to_thread(version)

    async def close(self) -> None:
        """Refuse further operations, wait for running ones, remove pooled worktrees. Idempotent."""
        self._closed = True
        for lock in list(self._locks.values()):
            async with lock:
                pass
        await self.pool.close()
