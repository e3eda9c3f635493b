"""Review: `GET /api/sessions/{id}/diff?stat_only=true` on the 50k-file repository with 10 files changed,
against plain `git diff --stat` in the same worktree, interleaved in the same run.

Berth's diff also counts untracked files, so it reads the worktree into a private copy of the index
(`git add -A` there) and diffs that tree; the stat cache of the copied index spares the unchanged files.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from bench.report import Report, Row
from bench.shared import SharedStack

__all__ = ["run_review"]

SECTION = "Review (diff of 10 changed files, 50k-file repository)"
FLOOR = "git diff --stat (floor)"
BERTH = "GET …/diff?stat_only=true"


def run_review(report: Report, quick: bool, shared: SharedStack, repo: Path) -> None:
    """Launch a stub session on `repo`, change 10 files, time both diffs alternately."""
    ws = shared.stack.workspace(repo, "stub")
    ack = shared.stack.api(
        "POST",
        f"/api/v1/workspaces/{ws}/sessions",
        {"worktree_name": "bench-review", "session_settings": {"code": {"default_provider": "claude_code"}}},
    ).json()
    sid, worktree = ack["payload"]["agent_session_id"], Path(ack["payload"]["worktree_path"])
    shared.sessions.append(sid)
    shared.worktrees.append(str(worktree))
    client = httpx.Client(
        base_url=shared.stack.controlplane.url, timeout=300, headers={"Authorization": f"Bearer {shared.stack.token}"}
    )
    try:
        deadline = time.monotonic() + 600
        while client.get(f"/api/sessions/{sid}").json()["status"] != "active":  # its files are written
            if time.monotonic() > deadline:
                raise RuntimeError("the review session did not start")
            time.sleep(0.2)
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=worktree, capture_output=True, text=True, check=True
        ).stdout.split()
        for name in tracked[:: max(len(tracked) // 10, 1)][:10]:
            with open(worktree / name, "a") as f:
                f.write("changed by the benchmark\n")
        runs = 5 if quick else 15
        floor: list[float] = []
        berth: list[float] = []
        for _ in range(2):  # warm both (page cache, stat cache) before timing
            subprocess.run(["git", "diff", "--stat"], cwd=worktree, capture_output=True, check=True)
            client.get(f"/api/sessions/{sid}/diff", params={"stat_only": "true"}).raise_for_status()
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(["git", "diff", "--stat"], cwd=worktree, capture_output=True, check=True)
            floor.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            r = client.get(f"/api/sessions/{sid}/diff", params={"stat_only": "true"})
            berth.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            if len(r.json()["files"]) != 10:
                raise RuntimeError(f"the diff shows {len(r.json()['files'])} files, not 10")
    finally:
        client.close()
    report.add(SECTION, Row(FLOOR, floor, "ms"))
    report.add(SECTION, Row(BERTH, berth, "ms", baseline=FLOOR))
    report.note(
        SECTION,
        f"{len(tracked)} files tracked, 10 of them changed. Berth's figure is the whole REST call "
        "(token check, the session's row, gRPC to the daemon, git, JSON); it counts untracked files too, "
        "which `git diff --stat` does not. Interleaved, after two warm-up calls of each.",
    )
