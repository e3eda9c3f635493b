"""Reads: GET /api/sessions/{id} and the list endpoint, requests per second, against a bare FastAPI app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from bench.http_load import requests_per_second
from bench.report import Report, Row
from bench.shared import SharedStack
from bench.stack import free_port
from tests.support.waiting import wait_for

__all__ = ["run_reads"]

SECTION = "Reads (requests per second, higher is better)"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _start_bare(bodies: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {"BENCH_BODIES": str(bodies), "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'proto'}", "PATH": "/usr/bin:/bin"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port),
             "--loop", "uvloop", "--log-level", "warning", "--no-access-log"],
            cwd=str(REPO_ROOT), env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"bare app exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(url + "/api/sessions", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, what="the bare FastAPI app", interval=0.1)
    return proc, url


def run_reads(report: Report, quick: bool, run_dir: Path, shared: SharedStack) -> None:
    seconds = 3.0 if quick else 8.0
    rounds = 2 if quick else 3
    sid = shared.sessions[0]
    cp = shared.stack.controlplane.url
    auth = {"Authorization": f"Bearer {shared.stack.token}"}
    detail = shared.stack.api("GET", f"/api/sessions/{sid}").text
    listing = shared.stack.api("GET", "/api/sessions").text
    bodies = run_dir / "bare-bodies.json"
    bodies.write_text(json.dumps({"/api/sessions/{id}": detail, "/api/sessions": listing}))
    proc, bare = _start_bare(bodies, run_dir / "bare-app.log")
    try:
        results: dict[str, list[float]] = {k: [] for k in ("bd", "bl", "cd", "cl")}
        for i in range(rounds):
            results["bd"].append(requests_per_second(f"{bare}/api/sessions/{sid}", {}, seconds))
            results["cd"].append(requests_per_second(f"{cp}/api/sessions/{sid}", auth, seconds))
            results["bl"].append(requests_per_second(f"{bare}/api/sessions", {}, seconds))
            results["cl"].append(requests_per_second(f"{cp}/api/sessions", auth, seconds))
            print(f"    #{i + 1}: detail {results['cd'][-1]:.0f} vs bare {results['bd'][-1]:.0f} req/s; "
                  f"list {results['cl'][-1]:.0f} vs bare {results['bl'][-1]:.0f} req/s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    n = len(shared.sessions)
    report.add(SECTION, Row("bare FastAPI, same session JSON", results["bd"], "req/s", higher_is_better=True))
    report.add(SECTION, Row("GET /api/sessions/{id}", results["cd"], "req/s", baseline="bare FastAPI, same session JSON",
                            higher_is_better=True))
    report.add(SECTION, Row("bare FastAPI, same list JSON", results["bl"], "req/s", higher_is_better=True))
    report.add(SECTION, Row(f"GET /api/sessions ({min(n, 50)} of {n} sessions)", results["cl"], "req/s",
                            baseline="bare FastAPI, same list JSON", higher_is_better=True))
    report.note(SECTION, f"Each sample: 4 keep-alive connections for {seconds:.0f} s. Berth answers with token "
                "authentication and SQLite reads (message counts included); the bare app returns the bytes Berth "
                f"returned, on the same uvicorn/uvloop, one process each, same machine. A ratio below 1 means Berth "
                "serves that fraction of the bare app's rate.")
