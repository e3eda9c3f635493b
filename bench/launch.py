"""Launch latency: REST launch → acknowledged, against plain `git worktree add -b` + starting the agent."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.repos import GIT_ENV, git
from bench.stack import Stack, wait_until
from tests.support.agents import CLAUDE_BIN, claude_env

__all__ = ["LaunchResult", "measure_floor", "measure_berth", "pool_ready"]


@dataclass
class LaunchResult:
    """Seconds per launch for one repository size and mode."""

    files: int
    mode: str  # "floor" | "berth, pool empty" | "berth, pool warm"
    seconds: list[float]
    note: str = ""


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def measure_floor(repo: Path, runs: int, scratch: Path, home: Path, model_url: str) -> list[float]:
    """`git worktree add -b NAME PATH` on `repo`, then start the same claude binary with the same argv."""
    env = {**os.environ, **claude_env(model_url, home)}
    out: list[float] = []
    scratch.mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        name = f"floor-{uuid.uuid4().hex[:8]}"
        path = scratch / name
        argv = [str(CLAUDE_BIN), "-p", "--input-format", "stream-json", "--output-format", "stream-json",
                "--verbose", "--session-id", str(uuid.uuid4()), "--permission-mode", "acceptEdits"]
        t0 = time.perf_counter()
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--quiet", "-b", name, str(path)],
                       env=GIT_ENV, check=True, capture_output=True)
        proc = subprocess.Popen(argv, cwd=path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        out.append(time.perf_counter() - t0)
        proc.stdin.close()
        proc.stdout.close()
        _kill_group(proc)
        git(repo, "worktree", "remove", "--force", str(path))
        git(repo, "branch", "-D", name)
        print(f"    floor {repo.name} #{i + 1}: {out[-1] * 1000:.0f} ms", flush=True)
    return out


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


def measure_berth(stack: Stack, daemon: str, repo: Path, runs: int, *, pool: int) -> tuple[list[float], str]:
    """POST /api/v1/workspaces/{id}/sessions until the acknowledgement; the session is then deleted.

    With `pool` > 0 each launch waits (untimed) until the pool holds `pool` ready worktrees.
    """
    ws = stack.workspace(repo, daemon)
    worktrees_root = Path(stack.daemons[daemon].config["daemon"]["worktrees_root"])
    note = ""
    out: list[float] = []
    if pool:
        # The daemon starts pooling a repository at its first launch there: one untimed launch first.
        _launch_and_delete(stack, ws)
    for i in range(runs):
        if pool:
            try:
                wait_until(lambda: pool_ready(worktrees_root, repo, pool), 300, "the pool to fill", 0.05)
            except TimeoutError:
                note = "the pool never filled: the daemon does not pass [pool] size to its worktree manager"
                break
        out.append(_launch_and_delete(stack, ws))
        print(f"    berth pool={pool} {repo.name} #{i + 1}: {out[-1] * 1000:.0f} ms", flush=True)
    return out, note


def _launch_and_delete(stack: Stack, ws: str) -> float:
    """Seconds from POST launch to the acknowledgement; then the session and its worktree are deleted."""
    body = {"worktree_name": f"bench-{uuid.uuid4().hex[:8]}",
            "session_settings": {"code": {"default_provider": "claude_code"}}}
    t0 = time.perf_counter()
    resp = stack.api("POST", f"/api/v1/workspaces/{ws}/sessions", body)
    elapsed = time.perf_counter() - t0
    ack = resp.json()
    if ack.get("status") != "ok":
        raise RuntimeError(f"launch failed: {ack}")
    sid = ack["payload"]["agent_session_id"]
    stack.api("DELETE", f"/api/sessions/{sid}", params={"remove_worktree": "true"})
    return elapsed
