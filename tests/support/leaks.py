"""What a test module must not leave behind: child processes of the test process still running."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.waiting import SESSION_PROCESSES, wait_for

__all__ = ["child_processes", "leaked_children"]


def child_processes() -> set[int]:
    """Live (not zombie) child processes of this process."""
    me, found = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == me and not fields.get("State", "").startswith("Z"):
            found.add(int(entry))
    return found


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
