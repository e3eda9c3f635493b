"""Reads: GET /api/sessions/{id} and the session list against a bare FastAPI app serving the same bytes, on
SQLite and on PostgreSQL, first with 51 sessions, then with 1,000 sessions and 1,000,000 stored messages; and
message pages deep into a 100,000-message session (keyset by after_seq, and by offset)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.http_load import requests_per_second
from bench.report import Report, Row
from bench.stack import free_port
from tests.support.controlplane_proc import cp_env, start_controlplane_process
from tests.support.waiting import wait_for

__all__ = ["PAGES", "SECTION", "run_reads"]

SECTION = "Reads (requests per second, higher is better)"
PAGES = "Message pages (GET …/messages, limit 100, in a 100,000-message session)"
REPO_ROOT = Path(__file__).resolve().parents[1]
OWNER = "admin"
RECENT = 51  # sessions of the "empty history" phase, each with a few messages
HISTORY_SESSIONS = 1000
HISTORY_MESSAGES = 1_000_000
DEEP = 100_000  # messages of the one long session
DEPTHS = (0, 25_000, 50_000, 75_000, 99_900)


def _start_bare(bodies: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {"BENCH_BODIES": str(bodies), "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'proto'}", "PATH": "/usr/bin:/bin"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.bare_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=str(REPO_ROOT),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
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


# --- seeding: rows shaped like a launched session's, written straight into the database --------------------


def _session_row(i: int, created: datetime, messages: int) -> dict[str, Any]:
    sid = f"session-{uuid.uuid4().hex[:16]}"
    return {
        "id": sid,
        "owner": OWNER,
        "user_session_id": None,
        "workspace_id": None,
        "machine_id": None,
        "agent_id": "CLAUDE_CODE",
        "task_id": f"task-{i % 7}",
        "prompt": f"Fix the flaky test number {i} and explain",
        "status": "active",
        "provider_session_id": str(uuid.uuid4()),
        "imported": False,
        "data": {
            "workdir": f"/home/dev/.local/state/berth/worktrees/repo/s-{i:04d}",
            "branch": f"berth/s-{i:04d}",
            "model": "claude-sonnet-4-5",
        },
        "worktree_name": f"s-{i:04d}",
        "worktree_path": f"/home/dev/.local/state/berth/worktrees/repo/s-{i:04d}",
        "launched": True,
        "last_seq": messages,
        "last_error": None,
        "created_at": created,
        "last_active": created,
        "pending_approvals": 0,
        "usage_input_tokens": 1200 + i,
        "usage_output_tokens": 345,
        "usage_cache_read_tokens": 0,
        "usage_cache_creation_tokens": 0,
        "usage_cost_usd": 0.000564,
        "usage_turns": 2,
        "usage_duration_ms": 2500,
        "message_count": messages,
    }


def _message_rows(sid: str, count: int, start: datetime) -> Iterator[tuple[Any, ...]]:
    for seq in range(1, count + 1):
        role = "assistant" if seq % 2 else "user"
        yield (
            f"msg-{uuid.uuid4().hex[:16]}",
            sid,
            seq,
            role,
            {"type": "text", "text": f"line {seq} of the agent's answer, about as long as a short sentence"},
            {},
            None,
            start + timedelta(milliseconds=seq),
        )


_SESSION_COLUMNS = tuple(_session_row(0, datetime.now(UTC), 0))
_MESSAGE_COLUMNS = ("id", "agent_session_id", "seq", "role", "content", "metadata", "status", "created_at")


def _sqlite_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it


def _seed_sqlite(path: str, sessions: list[dict[str, Any]], messages: list[tuple[str, int, datetime]]) -> None:
    conn = sqlite3.connect(path, timeout=60)
    try:
        rows = [
            tuple(
                _sqlite_time(v) if isinstance(v, datetime) else json.dumps(v) if isinstance(v, dict) else v
                for v in (s[c] for c in _SESSION_COLUMNS)
            )
            for s in sessions
        ]
        conn.executemany(
            f"INSERT INTO agent_sessions ({', '.join(_SESSION_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_SESSION_COLUMNS))})",
            rows,
        )
        sql = f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * len(_MESSAGE_COLUMNS))})"
        for sid, count, start in messages:
            conn.executemany(
                sql,
                (
                    (m[0], m[1], m[2], m[3], json.dumps(m[4]), "{}", None, _sqlite_time(m[7]))
                    for m in _message_rows(sid, count, start)
                ),
            )
        conn.commit()
    finally:
        conn.close()


async def _seed_postgres(url: str, sessions: list[dict[str, Any]], messages: list[tuple[str, int, datetime]]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = [
            tuple(json.dumps(v) if isinstance(v, dict) else v for v in (s[c] for c in _SESSION_COLUMNS))
            for s in sessions
        ]
        await conn.copy_records_to_table("agent_sessions", records=rows, columns=list(_SESSION_COLUMNS))
        for sid, count, start in messages:
            await conn.copy_records_to_table(
                "messages",
                columns=list(_MESSAGE_COLUMNS),
                records=[
                    (m[0], m[1], m[2], m[3], json.dumps(m[4]), "{}", None, m[7])
                    for m in _message_rows(sid, count, start)
                ],
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# --- one control plane per database -----------------------------------------------------------------------


class _ReadStack:
    """A control plane (no daemon) on one database, its admin token, and a way to add rows behind it."""

    def __init__(self, work: Path, backend: str, database_url: str) -> None:
        self.backend, self.database_url = backend, database_url
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = work / "controlplane.toml"
        config.write_text(f'[server]\nport = {port}\nstate_dir = "{work}"\ndatabase_url = "{database_url}"\n')
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "controlplane",
                "--config",
                str(config),
                "create-token",
                "--owner",
                OWNER,
                "--admin",
            ],
            capture_output=True,
            text=True,
            env=cp_env(),
            cwd=str(REPO_ROOT),
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"create-token failed: {done.stderr.strip()}")
        self.token = done.stdout.strip().splitlines()[-1].strip()
        self.proc = start_controlplane_process(config, port, work / "controlplane.log")
        self.url = self.proc.url
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def seed(self, sessions: list[dict[str, Any]], messages: list[tuple[str, int, datetime]]) -> None:
        if self.backend == "sqlite":
            _seed_sqlite(self.database_url.split("///", 1)[1], sessions, messages)
        else:
            asyncio.run(_seed_postgres(self.database_url, sessions, messages))

    def get(self, path: str) -> bytes:
        r = httpx.get(self.url + path, headers=self.auth, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} -> {r.status_code}: {r.text[:300]}")
        return r.content

    def close(self) -> None:
        self.proc.stop()


@contextmanager
def _database(backend: str, work: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{work / 'cp.sqlite3'}"
        return
    from tests.support.postgres import PostgresCluster, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries are missing (run scripts/ensure-system-packages.sh)")
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    try:
        _name, url = cluster.create_database()
        yield url
    finally:
        cluster.stop()


def _rates(stack: _ReadStack, sid: str, run_dir: Path, tag: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Interleaved samples of Berth's detail and list reads and the bare app serving the bytes Berth served."""
    bodies = run_dir / f"bare-bodies-{tag}.json"
    bodies.write_text(
        json.dumps(
            {
                "/api/sessions/{id}": stack.get(f"/api/sessions/{sid}").decode(),
                "/api/sessions": stack.get("/api/sessions").decode(),
            }
        )
    )
    proc, bare = _start_bare(bodies, run_dir / f"bare-app-{tag}.log")
    out: dict[str, list[float]] = {k: [] for k in ("bd", "cd", "bl", "cl")}
    try:
        for i in range(rounds):
            out["bd"].append(requests_per_second(f"{bare}/api/sessions/{sid}", {}, seconds))
            out["cd"].append(requests_per_second(f"{stack.url}/api/sessions/{sid}", stack.auth, seconds))
            out["bl"].append(requests_per_second(f"{bare}/api/sessions", {}, seconds))
            out["cl"].append(requests_per_second(f"{stack.url}/api/sessions", stack.auth, seconds))
            print(
                f"    {tag} #{i + 1}: detail {out['cd'][-1]:.0f} vs bare {out['bd'][-1]:.0f} req/s; "
                f"list {out['cl'][-1]:.0f} vs bare {out['bl'][-1]:.0f} req/s",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def _pages(stack: _ReadStack, sid: str, n: int) -> dict[str, list[float]]:
    """ms per page at each depth, keyset (after_seq) and offset, interleaved."""
    out: dict[str, list[float]] = {}
    with httpx.Client(base_url=stack.url, headers=stack.auth, timeout=60) as client:
        for _ in range(n):
            for depth in DEPTHS:
                for form, params in (("after_seq", {"after_seq": depth}), ("offset", {"offset": depth})):
                    started = time.perf_counter()
                    r = client.get(f"/api/sessions/{sid}/messages", params={"limit": 100, **params})
                    elapsed = (time.perf_counter() - started) * 1000
                    body = r.json()
                    if r.status_code != 200 or body["messages"][0]["seq"] != depth + 1:
                        raise RuntimeError(f"page {form}={depth}: {r.status_code} {r.text[:300]}")
                    out.setdefault(f"{form}={depth}", []).append(elapsed)
    return out


def run_reads(report: Report, quick: bool, run_dir: Path) -> None:
    seconds = 2.0 if quick else 5.0
    rounds = 2 if quick else 3
    history = 200_000 if quick else HISTORY_MESSAGES  # the paging depths need the whole long session either way
    deep = DEEP
    for backend in ("sqlite", "postgres"):
        work = run_dir / f"reads-{backend}"
        with _database(backend, work) as url:
            stack = _ReadStack(work, backend, url)
            try:
                now = datetime.now(UTC)
                recent = [_session_row(i, now - timedelta(seconds=RECENT - i), 10) for i in range(RECENT)]
                stack.seed(recent, [(s["id"], 10, s["created_at"]) for s in recent])
                sid = recent[0]["id"]
                print(f"  reads on {backend}: {RECENT} sessions", flush=True)
                empty = _rates(stack, sid, run_dir, f"{backend}-empty", seconds, rounds)
                # The history is older than the recent sessions: one 100k-message session and the rest spread out.
                old = HISTORY_SESSIONS - RECENT
                rest, extra = divmod(history - deep - 10 * RECENT, old - 1)
                counts = [deep] + [rest + (1 if i < extra else 0) for i in range(old - 1)]
                past = [_session_row(RECENT + i, now - timedelta(days=30, seconds=i), n) for i, n in enumerate(counts)]
                total = 10 * RECENT + sum(counts)
                print(f"  seeding {old} more sessions and {sum(counts):,} messages on {backend}", flush=True)
                started = time.monotonic()
                stack.seed(past, [(s["id"], s["message_count"], s["created_at"]) for s in past])
                print(f"    seeded in {time.monotonic() - started:.0f} s", flush=True)
                os.sync()  # the seed's dirty pages go to disk now, not during the measurement
                full = _rates(stack, sid, run_dir, f"{backend}-history", seconds, rounds)
                pages = _pages(stack, past[0]["id"], 5 if quick else 15)
            finally:
                stack.close()
        label = "SQLite" if backend == "sqlite" else "PostgreSQL"
        for phase, got, what in (
            ("51 sessions", empty, f"{RECENT} sessions, {10 * RECENT} messages"),
            ("history", full, f"{HISTORY_SESSIONS} sessions, {total:,} messages"),
        ):
            bd, bl = (
                f"{label}: bare FastAPI, same session JSON ({phase})",
                f"{label}: bare FastAPI, same list JSON ({phase})",
            )
            report.add(SECTION, Row(bd, got["bd"], "req/s", higher_is_better=True))
            report.add(
                SECTION,
                Row(
                    f"{label}: GET /api/sessions/{{id}} ({what})",
                    got["cd"],
                    "req/s",
                    baseline=bd,
                    higher_is_better=True,
                ),
            )
            report.add(SECTION, Row(bl, got["bl"], "req/s", higher_is_better=True))
            report.add(
                SECTION,
                Row(
                    f"{label}: GET /api/sessions, 50 newest ({what})",
                    got["cl"],
                    "req/s",
                    baseline=bl,
                    higher_is_better=True,
                ),
            )
        for key, values in pages.items():
            form, depth = key.split("=")
            report.add(PAGES, Row(f"{label}: {form}={int(depth):,}", values, "ms"))
    report.note(
        SECTION,
        f"Each sample: 4 keep-alive connections for {seconds:.0f} s, interleaved with the bare app. "
        "Berth answers with token authentication (cached), the owner's rows and its access log; the bare app "
        "returns the bytes Berth returned, on the same uvicorn/uvloop, one process each, same machine, no "
        "access log. The sessions are rows shaped like launched ones, written straight into the database "
        "(no daemon). The history is older than the 51 recent sessions, so the list's page is the same; "
        "its total counts all 1,000.",
    )
    report.note(
        PAGES,
        "Sequential GETs of 100 messages starting at that depth: `after_seq` is keyset paging "
        "(the page after a seq), `offset` the offset form. Interleaved over the depths.",
    )
