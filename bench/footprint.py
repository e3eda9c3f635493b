"""Footprint: daemon RSS idle and with 50 sessions; fds and RSS before/after many launch/stop cycles."""

from __future__ import annotations

import time
import uuid

from berth.daemon.v1 import daemon_pb2

from bench.report import Report, Row
from bench.shared import SharedStack
from bench.stack import proc_fds, proc_rss_kib

__all__ = ["SECTION", "cycles", "measure_rss"]

SECTION = "Footprint (daemon process only)"


def measure_rss(shared: SharedStack) -> float:
    """The daemon's RSS in MiB (agent processes are separate processes and not counted)."""
    return proc_rss_kib(shared.daemon.pid) / 1024


def _cycle(stub, shared: SharedStack, i: int) -> None:
    sid = f"cycle-{uuid.uuid4().hex[:10]}"
    settings = daemon_pb2.SessionSettings(code=daemon_pb2.CodeSettings(default_provider="claude_code"))
    ack = stub.LaunchSession(daemon_pb2.LaunchSessionRequest(
        workspace_id="bench", repository=str(shared.repo), worktree_name=sid, agent_session_id=sid,
        session_settings=settings), timeout=60)
    if ack.status != "ok":
        raise RuntimeError(f"cycle {i}: {ack.payload}")
    stub.StopSession(daemon_pb2.StopSessionRequest(agent_session_id=sid, grace_seconds=2), timeout=60)
    stub.RemoveWorktree(daemon_pb2.RemoveWorktreeRequest(worktree_path=ack.session.worktree_path, force=True,
                                                         delete_branch=True), timeout=60)


def cycles(report: Report, quick: bool, shared: SharedStack) -> None:
    """Launch → stop → remove worktree, straight over gRPC, with the stub agent; fds/RSS before and after."""
    total = 100 if quick else 1000
    pid = shared.daemon.pid
    with shared.daemon.channel() as channel:
        from berth.daemon.v1 import daemon_pb2_grpc

        stub = daemon_pb2_grpc.DaemonServiceStub(channel)
        for i in range(20):  # warm-up: thread pools, pool refills, lazy imports
            _cycle(stub, shared, i)
        fds_before, rss_before = proc_fds(pid), measure_rss(shared)
        rss_half = rss_before
        started = time.monotonic()
        for i in range(total):
            _cycle(stub, shared, i)
            if i + 1 == total // 2:
                rss_half = measure_rss(shared)
            if (i + 1) % 100 == 0:
                print(f"    {i + 1}/{total} cycles, fds {proc_fds(pid)}, RSS {measure_rss(shared):.1f} MiB", flush=True)
        elapsed = time.monotonic() - started
        fds_after, rss_after = proc_fds(pid), measure_rss(shared)
    report.add(SECTION, Row("fds before the cycles", [fds_before], "fds"))
    report.add(SECTION, Row("fds after the cycles", [fds_after], "fds", baseline="fds before the cycles"))
    report.add(SECTION, Row("RSS before the cycles", [rss_before], "MiB"))
    report.add(SECTION, Row("RSS after the cycles", [rss_after], "MiB", baseline="RSS before the cycles"))
    report.add(SECTION, Row("RSS half-way through the cycles", [rss_half], "MiB"))
    report.add(SECTION, Row("RSS after the cycles (second half)", [rss_after], "MiB",
                            baseline="RSS half-way through the cycles"))
    report.note(SECTION, f"{total} cycles of LaunchSession → StopSession → RemoveWorktree(delete_branch) straight "
                f"over gRPC with the stub agent (a Python script speaking claude stream-json, so a cycle costs "
                f"Berth's work, not node's start-up), after 20 warm-up cycles; {elapsed / total * 1000:.0f} ms per "
                "cycle on average. The daemon keeps a pool of 2 ready worktrees, so every launch claims and every "
                "claim triggers a refill.")
