"""A session's work in git: its diff against the commit it started from, commit, merge and push.

Every function runs git in the session's worktree or repository and never leaves anyone's checkout half
done: the diff reads the worktree into a private copy of its index (the worktree's own index is never
written), a merge is computed with `git merge-tree --write-tree` (no working tree involved) and moves
the target branch only when no checkout of it has local changes, a push sends one ref. Callers hold the
repository's lock.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.git_commands import GitResult, last_line, run
from daemon.validation import validate_worktree_name

__all__ = [
    "MAX_PATCH_BYTES",
    "PATCH_BYTES_LIMIT",
    "Diff",
    "DiffFile",
    "MergeResult",
    "commit_all",
    "diff",
    "merge",
    "push",
]

MAX_PATCH_BYTES = 1024 * 1024
# The largest patch a caller may ask for: well inside gRPC's 64 MiB message limit.
PATCH_BYTES_LIMIT = 16 * 1024 * 1024
_STATUS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "added", "T": "modified"}
_AUTHOR = re.compile(r"[^<>\x00-\x1f]{1,200} <[^<>\s\x00-\x1f]{1,200}>")
_REMOTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
Strategy = Literal["merge", "squash", "fast-forward"]


@dataclass
class DiffFile:
    path: str
    status: str  # added | modified | deleted | renamed | binary
    additions: int = 0
    deletions: int = 0
    old_path: str | None = None


@dataclass
class Diff:
    base_commit: str
    head_commit: str
    files: list[DiffFile] = field(default_factory=list)
    patch: str = ""
    truncated: bool = False


@dataclass
class MergeResult:
    merged_commit: str
    into: str
    strategy: str
    conflicts: list[str] = field(default_factory=list)


def _git(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    exact_stdout: bool = False,
) -> GitResult:
    done = run(cwd, *args, env=env, input_text=input_text, exact_stdout=exact_stdout)
    if check and not done.ok:
        raise FailedPrecondition(f"git {args[0]}: {last_line(done.stderr) or f'exit {done.status}'}")
    return done


def _git_dir(worktree: Path) -> Path:
    return Path(_git(worktree, "rev-parse", "--absolute-git-dir").stdout.strip())


# Berth's own index of a worktree, beside git's: `git add -A` makes it match the files whatever it held
# before, so it can be kept between diffs; its stat data and untracked cache spare unchanged files.
_PRIVATE_INDEX = "berth-diff-index"


def _snapshot_tree(worktree: Path, git_dir: Path) -> str:
    """The worktree as it is now (untracked files included, ignored ones not) as a tree object, read through
    Berth's private index, so the worktree's own index is never touched."""
    private = git_dir / _PRIVATE_INDEX
    if not private.exists():
        index = git_dir / "index"
        with tempfile.NamedTemporaryFile(dir=git_dir, prefix=f"{_PRIVATE_INDEX}.", delete=False) as tmp:
            seed = Path(tmp.name)
        if index.exists():
            shutil.copyfile(index, seed)  # a warm stat cache from the start
        else:
            _git(worktree, "read-tree", "HEAD", env={"GIT_INDEX_FILE": str(seed)})
        os.replace(seed, private)
    env = {"GIT_INDEX_FILE": str(private)}
    # core.untrackedCache for this command only (what `-c` does, keeping "add" first for error messages).
    _git(
        worktree,
        "add",
        "-A",
        env={**env, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.untrackedCache", "GIT_CONFIG_VALUE_0": "true"},
    )
    return _git(worktree, "write-tree", env=env).stdout.strip()


def _z(text: str) -> list[str]:
    return [p for p in text.split("\0") if p != ""]


def diff(
    worktree: Path,
    base_commit: str,
    *,
    path: str | None = None,
    stat_only: bool = False,
    max_patch_bytes: int = MAX_PATCH_BYTES,
) -> Diff:
    """The worktree (committed, uncommitted and untracked changes) against `base_commit`."""
    if not worktree.is_dir():
        raise NotFound(f"worktree {worktree} no longer exists")
    head, git_dir = _git(worktree, "rev-parse", "HEAD", "--absolute-git-dir").stdout.split("\n")[:2]
    tree = _snapshot_tree(worktree, Path(git_dir))
    limit = ["--", path] if path else []
    # One pass: --raw records (":mode mode sha sha STATUS\0path[\0path]") then --numstat records.
    fields = _z(_git(worktree, "diff", "--raw", "--numstat", "-z", "-M", base_commit, tree, *limit).stdout)
    changes: list[tuple[str, str | None, str]] = []
    stats: dict[str, tuple[int, int, bool]] = {}
    i = 0
    while i < len(fields):
        item = fields[i]
        if item.startswith(":"):
            code = item.split()[-1][0]
            if code in "RC":
                changes.append((code, fields[i + 1], fields[i + 2]))
                i += 3
            else:
                changes.append((code, None, fields[i + 1]))
                i += 2
            continue
        added, deleted, name = item.split("\t", 2)
        if name == "":  # a rename: old and new path follow
            name = fields[i + 2]
            i += 3
        else:
            i += 1
        binary = added == "-"
        stats[name] = (0 if binary else int(added), 0 if binary else int(deleted), binary)
    files: list[DiffFile] = []
    for code, old, new in changes:
        adds, dels, binary = stats.get(new, (0, 0, False))
        status = "binary" if binary else _STATUS.get(code, "modified")
        files.append(
            DiffFile(path=new, status=status, additions=adds, deletions=dels, old_path=old if code == "R" else None)
        )
    out = Diff(base_commit=base_commit, head_commit=head, files=files)
    if not stat_only:
        patch = _git(worktree, "diff", "--binary", "-M", base_commit, tree, *limit, exact_stdout=True).stdout
        data = patch.encode("utf-8", "surrogateescape")
        if len(data) > max_patch_bytes:
            out.patch = data[:max_patch_bytes].decode("utf-8", "ignore")
            out.truncated = True
        else:
            out.patch = patch
    return out


def _identity(worktree: Path) -> dict[str, str]:
    """Committer identity for git when the machine has none configured (the daemon's user may not)."""
    configured = _git(worktree, "config", "user.email", check=False).stdout.strip()
    if configured:
        return {}
    return {
        "GIT_COMMITTER_NAME": "Berth",
        "GIT_COMMITTER_EMAIL": "berth@localhost",
        "GIT_AUTHOR_NAME": "Berth",
        "GIT_AUTHOR_EMAIL": "berth@localhost",
    }


def commit_all(worktree: Path, message: str, author: str = "") -> str:
    """Commit everything in the worktree on its branch; FailedPrecondition when there is nothing to commit."""
    if not message.strip():
        raise InvalidArgument("message", "must not be empty")
    if author and not _AUTHOR.fullmatch(author):
        raise InvalidArgument("author", 'must look like "Name <email>"')
    if not worktree.is_dir():
        raise NotFound(f"worktree {worktree} no longer exists")
    _git(worktree, "add", "-A")
    if _git(worktree, "diff", "--cached", "--quiet", check=False).status == 0:
        raise FailedPrecondition("nothing to commit: the worktree has no changes")
    args = ["commit", "--no-verify", "--quiet", "-F", "-"]
    if author:
        args.append(f"--author={author}")
    _git(worktree, *args, env=_identity(worktree), input_text=message)
    return _git(worktree, "rev-parse", "HEAD").stdout.strip()


def _checkouts_of(repository: Path, branch: str) -> list[Path]:
    """Every worktree (the main one included) that has `branch` checked out."""
    out = _git(repository, "worktree", "list", "--porcelain", "-z").stdout
    found, path = [], None
    for item in out.split("\0"):
        if item.startswith("worktree "):
            path = Path(item[len("worktree ") :])
        elif item == f"branch refs/heads/{branch}" and path is not None:
            found.append(path)
    return found


def merge(repository: Path, branch: str, into: str, strategy: Strategy = "merge", message: str = "") -> MergeResult:
    """Merge the session's `branch` into `into` without touching a working tree until the result is known;
    a conflict → MergeResult with `conflicts` and nothing changed."""
    validate_worktree_name(into, "into")
    target = _git(repository, "rev-parse", "--verify", "--quiet", f"refs/heads/{into}^{{commit}}", check=False)
    if target.status != 0:
        raise NotFound(f"into: no branch {into!r} in the repository")
    old = target.stdout.strip()
    head = _git(repository, "rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}").stdout.strip()
    if head == old or _git(repository, "merge-base", "--is-ancestor", head, old, check=False).status == 0:
        raise FailedPrecondition(f"nothing to merge: {into!r} already has every commit of {branch!r}")
    fast_forward = _git(repository, "merge-base", "--is-ancestor", old, head, check=False).status == 0
    if strategy == "fast-forward" and not fast_forward:
        raise FailedPrecondition(
            f"strategy: {into!r} has commits that {branch!r} lacks; a fast-forward is not possible", field="strategy"
        )
    if strategy == "fast-forward" or (strategy == "merge" and fast_forward):
        new = head
    else:
        tree = _git(repository, "merge-tree", "--write-tree", "--name-only", "-z", old, head, check=False)
        if tree.status == 1:
            fields = tree.stdout.split("\0")
            # The tree, the conflicted paths, an empty field, then informational messages.
            end = fields.index("", 1) if "" in fields[1:] else len(fields)
            conflicts = sorted(set(fields[1:end]))
            return MergeResult(merged_commit="", into=into, strategy=strategy, conflicts=conflicts)
        if tree.status != 0:
            raise FailedPrecondition(f"git merge-tree: {last_line(tree.stderr)}")
        result_tree = _z(tree.stdout)[0]
        parents = ["-p", old, "-p", head] if strategy == "merge" else ["-p", old]
        text = message or (f"Merge branch '{branch}' into {into}" if strategy == "merge" else f"Squashed {branch}")
        new = _git(
            repository, "commit-tree", result_tree, *parents, "-F", "-", env=_identity(repository), input_text=text
        ).stdout.strip()
    checkouts = _checkouts_of(repository, into)
    for checkout in checkouts:
        if _git(checkout, "status", "--porcelain", "--untracked-files=no").stdout.strip():
            raise FailedPrecondition(
                f"into: the checkout of {into!r} at {checkout} has uncommitted changes; "
                "commit or stash them first (nothing was changed)",
                field="into",
            )
    if checkouts:
        # The checkout is clean: fast-forward it (ref, index and files together) to the merged commit.
        _git(checkouts[0], "merge", "--ff-only", "--quiet", new, env=_identity(repository))
    else:
        _git(repository, "update-ref", f"refs/heads/{into}", new, old)
    return MergeResult(merged_commit=new, into=into, strategy=strategy)


def push(worktree: Path, branch: str, remote: str = "origin", remote_branch: str = "") -> str:
    """Push the session's branch with the machine's own git credentials; the remote's refusal is a
    FailedPrecondition with git's words. Returns the ref pushed to."""
    if not _REMOTE.fullmatch(remote):
        raise InvalidArgument("remote", "must be a remote's name (letters, digits, . _ -)")
    target = remote_branch or branch
    validate_worktree_name(target, "branch")
    if _git(worktree, "remote", "get-url", remote, check=False).status != 0:
        raise NotFound(f"remote: the repository has no remote {remote!r}")
    done = _git(worktree, "push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{target}", check=False)
    if done.status != 0:
        reason = last_line(done.stderr) or last_line(done.stdout)
        rejected = [ln for ln in done.stdout.splitlines() if ln.startswith("!")]
        raise FailedPrecondition(f"push to {remote} refused: {rejected[0] if rejected else reason}")
    return f"refs/heads/{target}"


def fork_point(worktree: Path, repository: Path) -> str:
    """Where the worktree's branch left the repository's HEAD (its merge base)."""
    head = _git(repository, "rev-parse", "HEAD").stdout.strip()
    return _git(worktree, "merge-base", "HEAD", head).stdout.strip()


def default_target(repository: Path, base_ref: str) -> str:
    """The branch a merge goes into by default: `base_ref` when it names a branch, else the branch the
    repository has checked out."""
    if (
        base_ref
        and _git(repository, "show-ref", "--verify", "--quiet", f"refs/heads/{base_ref}", check=False).status == 0
    ):
        return base_ref
    current = _git(repository, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if current.status != 0 or not current.stdout.strip():
        raise FailedPrecondition(
            "into: the repository has no branch checked out; name the branch to merge into", field="into"
        )
    return current.stdout.strip()
