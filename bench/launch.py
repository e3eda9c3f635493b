"""Launch latency: REST launch → acknowledged, against plain `git worktree add -b` + starting the agent.

Nothing a timed sample creates is deleted until the whole series of one repository
size is done (cleanup()), and then the caller waits out the deletion window
(wait_out_deletions()): ext4 avoids reusing inodes freed within the last
dirty_expire interval and scans past each of them when allocating
(`recently_deleted()`), so deleting one sample's checkout slowed the next sample's
checkout (the 1k-file floor rose from 232 ms to 950 ms over 60 samples).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc

from bench.repos import GIT_ENV, git
from bench.stack import Stack
from tests.support.agents import CLAUDE_BIN, claude_env
from tests.support.waiting import wait_for

__all__ = [
    "BerthLauncher",
    "FloorLauncher",
    "deletion_window",
    "floor_env",
    "pool_idle",
    "pool_ready",
    "wait_out_deletions",
]

_DIRTY_EXPIRE = Path("/proc/sys/vm/dirty_expire_centisecs")


def deletion_window() -> float:
    """Seconds ext4 keeps skipping freed inodes: dirty_expire + 5 s (35 s when /proc does not say)."""
    try:
        return int(_DIRTY_EXPIRE.read_text().strip()) / 100 + 5
    except (OSError, ValueError):
        return 35.0


def wait_out_deletions() -> None:
    """Sleep (untimed) until inodes freed so far no longer slow new checkouts."""
    seconds = deletion_window()
    print(
        f"    waiting {seconds:.0f} s so inodes freed earlier are reusable again (ext4 scans past inodes "
        "deleted within vm.dirty_expire_centisecs + 5 s when allocating)",
        flush=True,
    )
    time.sleep(seconds)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def floor_env(home: Path, model_url: str) -> dict[str, str]:
    """The environment the daemon gives claude (same HOME, same model server)."""
    return {**os.environ, **claude_env(model_url, home)}


class FloorLauncher:
    """`git worktree add -b NAME PATH` on `repo`, then start the claude binary with the daemon's argv.

    The worktrees stay until cleanup() (see the module docstring).
    """

    def __init__(self, repo: Path, scratch: Path, env: dict[str, str]) -> None:
        self.repo = repo
        self.scratch = scratch
        self.env = env
        self.created: list[tuple[Path, str]] = []  # (worktree path, branch)

    def once(self) -> float:
        """One timed sample in seconds."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        name = f"floor-{uuid.uuid4().hex[:8]}"
        path = self.scratch / name
        argv = [
            str(CLAUDE_BIN),
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--session-id",
            str(uuid.uuid4()),
            "--permission-mode",
            "acceptEdits",
        ]
        t0 = time.perf_counter()
        subprocess.run(
            ["git", "-C", str(self.repo), "worktree", "add", "--quiet", "-b", name, str(path)],
            env=GIT_ENV,
            check=True,
            capture_output=True,
        )
        self.created.append((path, name))
        proc = subprocess.Popen(
            argv,
            cwd=path,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        elapsed = time.perf_counter() - t0
        proc.stdin.close()
        proc.stdout.close()
        _kill_group(proc)
        return elapsed

    def cleanup(self) -> None:
        """Remove every worktree and branch the samples created."""
        while self.created:
            path, name = self.created.pop()
            git(self.repo, "worktree", "remove", "--force", str(path))
            git(self.repo, "branch", "-D", name)


def _pool_members(worktrees_root: Path, repo: Path) -> list[Path]:
    return [p for p in worktrees_root.glob(f"{repo.name}-*/.pool/*") if not p.name.startswith(".trash")]


def _checked_out(member: Path) -> bool:
    try:
        admin = Path((member / ".git").read_text().split("gitdir: ", 1)[1].strip())
    except (OSError, IndexError):
        return False
    return (admin / "index").exists()


def pool_ready(worktrees_root: Path, repo: Path, size: int) -> bool:
    """`size` pooled worktrees of `repo` exist with their index written (checkout finished)."""
    return sum(_checked_out(m) for m in _pool_members(worktrees_root, repo)) >= size


def pool_idle(worktrees_root: Path, repo: Path, size: int) -> bool:
    """The pool of `repo` is full and busy with nothing: `size` checked-out members, none pending or in the trash."""
    entries = list(worktrees_root.glob(f"{repo.name}-*/.pool/*"))
    members = [p for p in entries if not p.name.startswith(".trash")]
    return len(members) == len(entries) == size and all(_checked_out(m) for m in members)


class BerthLauncher:
    """Launches through the REST API on one daemon's workspace for `repo`.

    Each launch's session is stopped and deleted right away (without its worktree);
    the worktrees and branches go in cleanup(), through the daemon's RemoveWorktree.
    """

    def __init__(self, stack: Stack, daemon: str, repo: Path, pool: int) -> None:
        self.stack = stack
        self.daemon = daemon
        self.repo = repo
        self.pool = pool
        self.ws = stack.workspace(repo, daemon)
        self.worktrees_root = Path(stack.daemons[daemon].config["daemon"]["worktrees_root"])
        self.note = ""
        self.created: list[str] = []  # worktree paths
        self.until_running: list[float] = []  # per timed launch: seconds until the agent ran
        self._stub = daemon_pb2_grpc.DaemonServiceStub(stack.daemons[daemon].channel())
        if pool:
            # The daemon starts pooling a repository at its first launch there: one untimed launch first.
            self._launch()

    def wait_pool(self) -> bool:
        """Wait (untimed) until the pool is full; False when it never fills."""
        if not self.pool:
            return True
        try:
            wait_for(
                lambda: pool_ready(self.worktrees_root, self.repo, self.pool),
                timeout=300,
                what="the pool",
                interval=0.05,
            )
        except TimeoutError:
            self.note = "the pool never filled within 300 s"
            return False
        return True

    def once(self) -> float | None:
        """One timed launch (None when the pool never filled)."""
        if not self.wait_pool():
            return None
        elapsed, running = self._launch()
        self.until_running.append(running)
        return elapsed

    def _launch(self) -> tuple[float, float]:
        """Seconds from POST launch to the acknowledgement, and until the daemon reports the agent running.

        Then the session is stopped and deleted, and (untimed) the daemon's background work
        (the pool's refill) is waited for, so it never overlaps the next sample of any kind.
        """
        body = {
            "worktree_name": f"bench-{uuid.uuid4().hex[:8]}",
            "session_settings": {"code": {"default_provider": "claude_code"}},
        }
        t0 = time.perf_counter()
        resp = self.stack.api("POST", f"/api/v1/workspaces/{self.ws}/sessions", body)
        elapsed = time.perf_counter() - t0
        ack = resp.json()
        if ack.get("status") != "ok":
            raise RuntimeError(f"launch failed: {ack}")
        payload = ack["payload"]
        sid = payload["agent_session_id"]
        if payload.get("worktree_path"):
            self.created.append(str(payload["worktree_path"]))
        request = daemon_pb2.SessionRequest(agent_session_id=sid)
        wait_for(
            lambda: self._stub.GetSession(request, timeout=30).status == "active",
            timeout=300,
            what="the agent to run",
            interval=0.002,
        )
        running = time.perf_counter() - t0
        self.stack.api("DELETE", f"/api/sessions/{sid}")
        if self.pool:
            try:
                wait_for(
                    lambda: pool_idle(self.worktrees_root, self.repo, self.pool),
                    timeout=300,
                    what="the pool to refill",
                    interval=0.05,
                )
            except TimeoutError:
                self.note = "the pool did not refill within 300 s"
        return elapsed, running

    def cleanup(self) -> None:
        """Remove the launches' worktrees and their branches (RemoveWorktree, force, delete_branch)."""
        if not self.created:
            return
        stub = daemon_pb2_grpc.DaemonServiceStub(self.stack.daemons[self.daemon].channel())
        while self.created:
            path = self.created.pop()
            stub.RemoveWorktree(
                daemon_pb2.RemoveWorktreeRequest(worktree_path=path, force=True, delete_branch=True), timeout=300
            )
