"""Generated benchmark repositories: N small committed source files, cached under bench/.work/repos."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["GIT_ENV", "git", "make_repository"]

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Berth Bench",
    "GIT_AUTHOR_EMAIL": "bench@berth.invalid",
    "GIT_COMMITTER_NAME": "Berth Bench",
    "GIT_COMMITTER_EMAIL": "bench@berth.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}
_FILES_PER_DIR = 100


def git(repo: Path, *args: str) -> str:
    """`git -C repo args` (raises on failure), stdout stripped."""
    done = subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _source(i: int) -> str:
    return (
        f'"""Module {i} of the benchmark repository."""\n\n\n'
        f"def function_{i}(value: int) -> int:\n"
        f'    """Return value plus {i}."""\n'
        f"    return value + {i}\n"
    )


def make_repository(root: Path, files: int) -> Path:
    """A repository with `files` small committed files (reused when already complete)."""
    root = root.resolve()
    path = root / f"repo-{files}"
    done_marker = root / f"repo-{files}.done"
    if done_marker.exists() and (path / ".git").is_dir():
        _tidy(path)
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "gc.auto", "0")  # no background gc in the middle of a measurement
    for i in range(files):
        d = (
            path
            / "src"
            / f"pkg{i // (_FILES_PER_DIR * _FILES_PER_DIR):02d}"
            / f"mod{(i // _FILES_PER_DIR) % _FILES_PER_DIR:02d}"
        )
        if i % _FILES_PER_DIR == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i}.py").write_text(_source(i))
    (path / "README.md").write_text(f"Benchmark repository with {files} files.\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"{files} files")
    git(path, "repack", "-adq")
    done_marker.write_text("ok\n")
    return path


def _tidy(repo: Path) -> None:
    """Forget worktrees and branches an interrupted earlier run left in a cached repository.

    Registered worktrees whose directory is gone are pruned, then every branch but main
    that no worktree has checked out is deleted (a run in progress keeps its own).
    """
    git(repo, "worktree", "prune")
    refs = git(repo, "for-each-ref", "--format=%(refname:short) %(worktreepath)", "refs/heads")
    stale = [
        line.split(" ", 1)[0]
        for line in refs.splitlines()
        if line and not line.partition(" ")[2] and line.split(" ", 1)[0] != "main"
    ]
    if stale:
        print(f"  {repo.name}: deleting {len(stale)} branches left by earlier runs", flush=True)
        for i in range(0, len(stale), 200):
            git(repo, "branch", "-D", *stale[i : i + 200])
