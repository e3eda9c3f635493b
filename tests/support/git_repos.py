"""Real temporary git repositories for tests.

Plain functions (`make_repo`, `commit_file`, `git`) plus pytest fixtures
(`git_repo`, `make_git_repo`) loadable with
``pytest_plugins = ["tests.support.git_repos"]``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["GIT_ENV", "commit_file", "git", "git_repo", "head_commit", "make_git_repo", "make_repo"]

# A fixed identity and no user/system config, so tests behave the same on every machine.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Berth Test",
    "GIT_AUTHOR_EMAIL": "test@berth.invalid",
    "GIT_COMMITTER_NAME": "Berth Test",
    "GIT_COMMITTER_EMAIL": "test@berth.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run `git -C repo args...` and return its stripped stdout (raises on failure)."""
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def commit_file(repo: Path, name: str, content: str, message: str | None = None) -> str:
    """Write `name` (relative to repo) with `content`, commit it, return the new commit sha."""
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    git(repo, "add", "--", name)
    git(repo, "commit", "-q", "-m", message or f"Add {name}")
    return head_commit(repo)


def head_commit(repo: Path) -> str:
    """The full sha of HEAD in `repo`."""
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, *, commits: int = 1, branch: str = "main") -> Path:
    """Create a git repository at `path` with `commits` commits on `branch`; return its path."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    for i in range(commits):
        commit_file(path, f"file{i}.txt", f"content {i}\n", f"Commit {i}")
    return path


@pytest.fixture
def make_git_repo(tmp_path: Path) -> Callable[..., Path]:
    """Factory fixture: make_git_repo(name="repo", commits=1, branch="main") -> Path."""
    counter = iter(range(1_000_000))

    def factory(name: str | None = None, *, commits: int = 1, branch: str = "main") -> Path:
        return make_repo(tmp_path / "repos" / (name or f"repo{next(counter)}"), commits=commits, branch=branch)

    return factory


@pytest.fixture
def git_repo(make_git_repo: Callable[..., Path]) -> Path:
    """A fresh repository with two commits on `main`."""
    return make_git_repo("repo", commits=2)
