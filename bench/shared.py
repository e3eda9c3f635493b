"""One stack for the import, events, reads and footprint parts: stub-agent daemon + control plane."""

from __future__ import annotations

import uuid
from pathlib import Path

from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc

from bench.stack import Stack

__all__ = ["SharedStack"]


class SharedStack:
    """A daemon running the stub agent (pool of 2), a control plane, a workspace on the 1k repository;
    with `dial_out`, the daemon is enrolled and reached through its tunnel only."""

    def __init__(self, run_dir: Path, repo: Path, *, dial_out: bool = False) -> None:
        self.stack = Stack(run_dir / ("shared-dial-out" if dial_out else "shared"))
        self.repo = repo
        try:
            if dial_out:  # the daemon reaches the control plane through its tunnel
                self.stack.start_controlplane(tunnel=True)
                self.daemon = self.stack.start_dial_out_daemon(
                    "stub", pool=2, provider=Stack.stub_provider(), max_sessions=80
                )
            else:
                self.daemon = self.stack.start_daemon("stub", pool=2, provider=Stack.stub_provider(), max_sessions=80)
                self.stack.start_controlplane()
            self.ws = self.stack.workspace(repo, "stub")
        except BaseException:
            self.stack.close()
            raise
        self.sessions: list[str] = []
        self.worktrees: list[str] = []

    def launch(self) -> str:
        body = {
            "worktree_name": f"s-{uuid.uuid4().hex[:8]}",
            "session_settings": {"code": {"default_provider": "claude_code"}},
        }
        ack = self.stack.api("POST", f"/api/v1/workspaces/{self.ws}/sessions", body).json()
        if ack.get("status") != "ok":
            raise RuntimeError(f"launch failed: {ack}")
        sid = ack["payload"]["agent_session_id"]
        self.sessions.append(sid)
        if ack["payload"].get("worktree_path"):
            self.worktrees.append(str(ack["payload"]["worktree_path"]))
        return sid

    def delete_all(self) -> None:
        """Delete every session launched here, then remove their worktrees and branches."""
        for sid in self.sessions:
            self.stack.api("DELETE", f"/api/sessions/{sid}")
        self.sessions.clear()
        # The REST remove_worktree keeps the branch; the daemon's RemoveWorktree can delete it too.
        stub = daemon_pb2_grpc.DaemonServiceStub(self.daemon.channel())
        for path in self.worktrees:
            stub.RemoveWorktree(
                daemon_pb2.RemoveWorktreeRequest(worktree_path=path, force=True, delete_branch=True), timeout=300
            )
        self.worktrees.clear()

    def close(self) -> None:
        try:
            self.delete_all()  # leave no worktree or branch in the cached repository
        except Exception as exc:  # noqa: BLE001 - stop the stack anyway; the next run's tidy-up catches the rest
            print(f"warning: removing the shared sessions' worktrees: {exc}", flush=True)
        finally:
            self.stack.close()
