"""Agents an earlier daemon left running: end their process groups before their sessions are resumed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

__all__ = ["end_orphan_group"]


async def end_orphan_group(pid: int, binary_hint: str) -> None:
    """End an orphaned agent's process group, if `pid` still leads one running the agent.

    Checks the group and the command line first: after a reboot the pid may
    belong to something else entirely.
    """
    try:
        if os.getpgid(pid) != pid:
            return
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (ProcessLookupError, PermissionError, FileNotFoundError, OSError):
        return
    if binary_hint not in cmdline:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)  # the daemon keeps serving meanwhile
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
