"""Launch latency: REST launch → acknowledged, against plain `git worktree add -b` + starting the agent."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from bench.repos import GIT_ENV, git
from bench.stack import Stack, wait_until
from tests.support.agents import CLAUDE_BIN, claude_env

__all__ = ["BerthLauncher", "floor_env", "floor_once", "pool_ready"]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _settle() -> None:
    """Write back dirty pages before a timed launch (untimed).

    Every sample writes or deletes a whole checkout; without this the kernel's
    writeback of earlier samples lands on later ones, and the floor at 1k files
    was seen rising from 46 ms to 981 ms within one run.
    """
    os.sync()


def floor_once(repo: Path, scratch: Path, env: dict[str, str]) -> float:
    """`git worktree add -b NAME PATH` on `repo`, then start the claude binary with the daemon's argv."""
    scratch.mkdir(parents=True, exist_ok=True)
    name = f"floor-{uuid.uuid4().hex[:8]}"
    path = scratch / name
    argv = [str(CLAUDE_BIN), "-p", "--input-format", "stream-json", "--output-format", "stream-json",
            "--verbose", "--session-id", str(uuid.uuid4()), "--permission-mode", "acceptEdits"]
    _settle()
    t0 = time.perf_counter()
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--quiet", "-b", name, str(path)],
                   env=GIT_ENV, check=True, capture_output=True)
    proc = subprocess.Popen(argv, cwd=path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    elapsed = time.perf_counter() - t0
    proc.stdin.close()
    proc.stdout.close()
    _kill_group(proc)
    git(repo, "worktree", "remove", "--force", str(path))
    git(repo, "branch", "-D", name)
    return elapsed


def floor_env(home: Path, model_url: str) -> dict[str, str]:
    """The environment the daemon gives claude (same HOME, same model server)."""
    return {**os.environ, **claude_env(model_url, home)}


def _pool_members(worktrees_root: Path, repo: Path) -> list[Path]:
    return [p for p in worktrees_root.glob(f"{repo.name}-*/.pool/*") if not p.name.startswith(".trash")]


def pool_ready(worktrees_root: Path, repo: Path, size: int) -> bool:
    """`size` pooled worktrees of `repo` exist with their index written (checkout finished)."""
    ready = 0
    for member in _pool_members(worktrees_root, repo):
        try:
            admin = Path((member / ".git").read_text().split("gitdir: ", 1)[1].strip())
        except (OSError, IndexError):
            continue
        if (admin / "index").exists():
            ready += 1
    return ready >= size


class BerthLauncher:
    """Launches through the REST API on one daemon's workspace for `repo`."""

    def __init__(self, stack: Stack, daemon: str, repo: Path, pool: int) -> None:
        self.stack = stack
        self.repo = repo
        self.pool = pool
        self.ws = stack.workspace(repo, daemon)
        self.worktrees_root = Path(stack.daemons[daemon].config["daemon"]["worktrees_root"])
        self.note = ""
        if pool:
            # The daemon starts pooling a repository at its first launch there: one untimed launch first.
            _launch_and_delete(stack, self.ws)

    def once(self) -> float | None:
        """One timed launch (None when the pool never filled)."""
        if self.pool:
            try:
                wait_until(lambda: pool_ready(self.worktrees_root, self.repo, self.pool), 300, "the pool", 0.05)
            except TimeoutError:
                self.note = "the pool never filled within 300 s"
                return None
        return _launch_and_delete(self.stack, self.ws)


def _launch_and_delete(stack: Stack, ws: str) -> float:
    """Seconds from POST launch to the acknowledgement; then the session and its worktree are deleted."""
    body = {"worktree_name": f"bench-{uuid.uuid4().hex[:8]}",
            "session_settings": {"code": {"default_provider": "claude_code"}}}
    _settle()
    t0 = time.perf_counter()
    resp = stack.api("POST", f"/api/v1/workspaces/{ws}/sessions", body)
    elapsed = time.perf_counter() - t0
    ack = resp.json()
    if ack.get("status") != "ok":
        raise RuntimeError(f"launch failed: {ack}")
    sid = ack["payload"]["agent_session_id"]
    stack.api("DELETE", f"/api/sessions/{sid}", params={"remove_worktree": "true"})
    return elapsed
