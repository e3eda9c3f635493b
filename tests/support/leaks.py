"""What a test module must not leave behind: child processes still running, non-daemon threads still
alive (they would keep the interpreter from exiting)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.support.waiting import SESSION_PROCESSES, wait_for

__all__ = ["child_processes", "leaked_children", "leaked_threads", "processes"]


def processes() -> list[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every process, from /proc/<pid>/stat."""
    table = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        table.append((int(entry), fields[0], int(fields[1]), int(fields[2])))
    return table


def child_processes() -> set[int]:
    """Live (not zombie) child processes of this process."""
    me = os.getpid()
    return {pid for pid, state, ppid, _ in processes() if ppid == me and state not in ("Z", "X")}


def leaked_children(before: set[int], *, timeout: float) -> dict[int, str]:
    """{pid: command line} of children started since `before` that are still running after `timeout`
    seconds (the session-scoped fixtures' own processes aside)."""

    def leaked() -> set[int]:
        return child_processes() - before - SESSION_PROCESSES

    try:
        wait_for(lambda: not leaked(), timeout=timeout, what="child processes to end")
    except TimeoutError:
        out = {}
        for pid in leaked():
            try:
                out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
            except OSError:
                continue
        return out
    return {}


def leaked_threads(before: set[threading.Thread], *, timeout: float) -> list[str]:
    """Names of non-daemon threads started since `before` and still alive after `timeout` seconds."""

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]

    try:
        wait_for(lambda: not leaked(), timeout=timeout, what="threads to end")
    except TimeoutError:
        return [t.name for t in leaked()]
    return []
