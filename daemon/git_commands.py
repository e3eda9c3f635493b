"""The daemon's one way to run git: GitPython's command runner, one terminal-free environment, one error type.

Every git process the daemon starts goes through `run()` / `git()` here (worktrees, the pool,
review and ship), never through a shell. The porcelain parsers for what those commands print
live beside the runner.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

__all__ = [
    "NO_PROMPT_ENV",
    "GitError",
    "GitResult",
    "WorktreeEntry",
    "git",
    "git_version",
    "last_line",
    "list_worktrees",
    "parse_worktree_list",
    "run",
    "succeeds",
]

# Never let git wait for a password or a host-key prompt: the daemon has no terminal.
NO_PROMPT_ENV: Mapping[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
}


def last_line(text: str) -> str:
    """The last non-empty line of `text` (git puts the reason for a failure there)."""
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class GitError(RuntimeError):
    """A git command exited non-zero; str() names the command and git's last stderr line."""

    def __init__(self, args: tuple[str, ...], status: int, stderr: str) -> None:
        self.args_run = args
        self.status = status
        self.stderr = stderr
        self.reason = last_line(stderr) or f"exit {status}"
        super().__init__(f"git {' '.join(args[:2])}: {self.reason}")


@dataclass(frozen=True)
class GitResult:
    """What a finished git command gave: exit status, stdout (one trailing newline removed), stderr."""

    status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def run(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    exact_stdout: bool = False,
) -> GitResult:
    """Run `git args` in `cwd` and return its result whatever the exit status (`exact_stdout`: keep
    the final newline, e.g. of a patch)."""
    if not os.path.isdir(cwd):
        # GitPython would run git in the daemon's own directory instead.
        return GitResult(128, "", f"fatal: cannot change to '{cwd}': No such file or directory")
    runner = gitpython.Git(str(cwd))
    extra = {**NO_PROMPT_ENV, **(env or {})}
    if input_text is None:
        status, out, err = runner.execute(
            ["git", *args],
            env=extra,
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=not exact_stdout,
        )
    else:
        with tempfile.TemporaryFile() as stdin:
            stdin.write(input_text.encode("utf-8", "surrogateescape"))
            stdin.seek(0)
            status, out, err = runner.execute(
                ["git", *args],
                env=extra,
                istream=stdin,
                with_extended_output=True,
                with_exceptions=False,
                strip_newline_in_stdout=not exact_stdout,
            )
    return GitResult(int(status or 0), str(out), str(err))


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None, input_text: str | None = None) -> str:
    """Run `git args` in `cwd`; its stdout (one trailing newline removed), or GitError."""
    result = run(cwd, *args, env=env, input_text=input_text)
    if not result.ok:
        raise GitError(args, result.status, result.stderr)
    return result.stdout


def succeeds(cwd: Path, *args: str) -> bool:
    """Whether `git args` exits 0 (for the commands that answer yes/no by their status)."""
    return run(cwd, *args).ok


def git_version() -> str:
    """The installed git's version, e.g. "2.39.5"."""
    return git(Path.cwd(), "--version").removeprefix("git version ").strip()


@dataclass
class WorktreeEntry:
    """One record of `git worktree list --porcelain`."""

    path: Path
    head: str = ""
    branch: str = ""  # short name; "" when detached or bare
    bare: bool = False
    prunable: bool = False


def parse_worktree_list(text: str) -> list[WorktreeEntry]:
    """The records of `git worktree list --porcelain -z` output."""
    entries: list[WorktreeEntry] = []
    for line in text.split("\0"):
        if line.startswith("worktree "):
            entries.append(WorktreeEntry(path=Path(line[len("worktree ") :])))
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


def list_worktrees(repository: Path) -> list[WorktreeEntry]:
    """Every worktree of `repository`, the main one first."""
    return parse_worktree_list(git(repository, "worktree", "list", "--porcelain", "-z"))
