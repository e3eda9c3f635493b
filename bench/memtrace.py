"""`python -m bench.memtrace [--cycles N]`: where the daemon's memory grows over launch/stop cycles.

Runs the daemon's Supervisor in this process (stub agent, the generated 1k-file
repository, pool of 2), does N launch → stop → remove worktree cycles and compares
tracemalloc snapshots taken after the warm-up and at the end (both with the pool
full and idle): the allocation sites that grew most, with the process's RSS beside
them (memory outside Python's allocator, such as SQLite's page cache, shows only there).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import uvloop

from bench.launch import pool_idle
from bench.repos import make_repository
from bench.stack import STUB_AGENT, proc_rss_kib
from daemon.config import from_dict
from daemon.supervisor import LaunchRequest, Supervisor

__all__ = ["main", "trace"]

WORK = Path(__file__).resolve().parent / ".work"
POOL = 2
WARM_UP = 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _native() -> dict[str, int]:
    """Bytes held by SQLite (sqlite3_memory_used) and by malloc (in use, and obtained from the OS); best effort."""
    out: dict[str, int] = {}
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        out["sqlite"] = int(lib.sqlite3_memory_used())
    except (OSError, AttributeError):
        pass
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        out["malloc in use"] = info.uordblks + info.hblkhd
        out["malloc from the OS"] = info.arena + info.hblkhd
    except (OSError, AttributeError):
        pass
    return out


async def _idle(sup: Supervisor, worktrees_root: Path, repo: Path, deadline: float = 120.0) -> None:
    """Wait until the pool is full and idle, then collect garbage."""
    await sup.worktrees.wait_pool_ready(repo, timeout=deadline)
    end = time.monotonic() + deadline
    while not pool_idle(worktrees_root, repo, POOL):
        if time.monotonic() > end:
            raise TimeoutError(f"the pool of {repo} did not become idle within {deadline:.0f} s")
        await asyncio.sleep(0.05)
    gc.collect()


async def _cycle(sup: Supervisor, repo: Path) -> None:
    sid = f"mt-{uuid.uuid4().hex[:10]}"
    result = await sup.launch(
        LaunchRequest(
            repository=str(repo), workspace_id="bench", worktree_name=sid, agent_session_id=sid, provider="claude_code"
        )
    )
    await sup.stop(sid, grace=2)
    await sup.left_worktrees.remove(str(result.session.worktree_path), force=True, delete_branch=True)


async def trace(cycles: int, top: int, frames: int) -> None:
    """Run the cycles and print the allocation sites that grew most between the two snapshots."""
    repo = Path(os.path.realpath(make_repository(WORK / "repos", 1000)))
    WORK.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="memtrace-", dir=WORK))
    config = from_dict(
        {
            "daemon": {
                "state_dir": str(base / "state"),
                "repos_root": str(base / "repos"),
                "worktrees_root": str(base / "worktrees"),
                "log_level": "WARNING",
                "stop_grace_seconds": 2,
                "stop_agents_on_shutdown": True,
            },
            "providers": {"claude_code": {"binary": str(STUB_AGENT)}},
            "pool": {"size": POOL},
        }
    )
    tracemalloc.start(frames)
    try:
        async with Supervisor(config) as sup:
            for _ in range(WARM_UP):
                await _cycle(sup, repo)
            await _idle(sup, config.worktrees_root, repo)
            first = tracemalloc.take_snapshot()
            rss0, traced0, native0 = proc_rss_kib(os.getpid()), tracemalloc.get_traced_memory()[0], _native()
            own0 = tracemalloc.get_tracemalloc_memory()
            started = time.monotonic()
            for i in range(cycles):
                await _cycle(sup, repo)
                if (i + 1) % 50 == 0:
                    print(f"  {i + 1}/{cycles} cycles, RSS {proc_rss_kib(os.getpid()) / 1024:.1f} MiB", flush=True)
            elapsed = time.monotonic() - started
            await _idle(sup, config.worktrees_root, repo)
            # Measured before the second snapshot, which would otherwise count itself (the first exists in both).
            rss1, traced1, native1 = proc_rss_kib(os.getpid()), tracemalloc.get_traced_memory()[0], _native()
            own1 = tracemalloc.get_tracemalloc_memory()
            last = tracemalloc.take_snapshot()
            db_size = sum(f.stat().st_size for f in config.state_dir.glob("*") if f.is_file())
    finally:
        tracemalloc.stop()
        shutil.rmtree(base, ignore_errors=True)
    skip = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ]
    first, last = first.filter_traces(skip), last.filter_traces(skip)
    print(f"\n{cycles} cycles in {elapsed:.0f} s ({elapsed / cycles * 1000:.0f} ms each), after {WARM_UP} warm-up")
    print(f"RSS: {rss0 / 1024:.1f} → {rss1 / 1024:.1f} MiB ({(rss1 - rss0) / cycles:+.2f} KiB/cycle)")
    print(
        f"traced by tracemalloc: {traced0 / 1024 / 1024:.2f} → {traced1 / 1024 / 1024:.2f} MiB "
        f"({(traced1 - traced0) / 1024 / cycles:+.2f} KiB/cycle)"
    )
    print(
        f"tracemalloc's own bookkeeping (malloc, inside the figures below): {own0 / 1024 / 1024:.2f} → "
        f"{own1 / 1024 / 1024:.2f} MiB ({(own1 - own0) / 1024 / cycles:+.2f} KiB/cycle)"
    )
    for name in native1:
        if name in native0:
            print(
                f"{name}: {native0[name] / 1024 / 1024:.2f} → {native1[name] / 1024 / 1024:.2f} MiB "
                f"({(native1[name] - native0[name]) / 1024 / cycles:+.2f} KiB/cycle)"
            )
    print(f"state store on disk at the end: {db_size / 1024 / 1024:.1f} MiB")
    stats = last.compare_to(first, "lineno")
    print(f"\ntop {top} allocation sites by growth (size diff, blocks diff, per cycle):")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks "
            f"({stat.size_diff / cycles:+7.1f} B/cycle)  {_short(frame.filename)}:{frame.lineno}"
        )
    by_traceback = last.compare_to(first, "traceback")
    print("\nthe largest call path into each of the top 5 sites (most recent call last):")
    for stat in stats[:5]:
        site = stat.traceback[0]
        path = next((t for t in by_traceback if t.traceback[-1] == site), None)  # oldest frame first
        if path is None:
            continue
        print(f"  {_short(site.filename)}:{site.lineno}: {path.size_diff / 1024:+.1f} KiB, {path.count_diff:+d} blocks")
        for line in path.traceback.format(limit=frames):
            print(f"    {_short(line.strip()) if line.startswith('  File') else line}")


def _short(filename: str) -> str:
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    for prefix in (root, sys.prefix + os.sep, sys.base_prefix + os.sep):
        if filename.startswith(prefix):
            return filename[len(prefix) :]
    return filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memtrace", description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300, help="measured cycles after the warm-up")
    parser.add_argument("--top", type=int, default=15, help="allocation sites to print")
    parser.add_argument("--frames", type=int, default=12, help="stack frames kept per allocation")
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (the daemon runs on uvloop)"
    )
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error("--cycles: must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    run = uvloop.run if args.loop == "uvloop" else asyncio.run
    run(trace(args.cycles, args.top, args.frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
