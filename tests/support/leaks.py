"""What a test module must not leave behind: child processes still running, non-daemon threads still
alive (they would keep the interpreter from exiting), open file descriptors, temporary files."""

from __future__ import annotations

import gc
import os
import re
import tempfile
import threading
from pathlib import Path

from tests.support.waiting import SESSION_FDS, SESSION_PROCESSES, wait_for

__all__ = [
    "child_processes",
    "leaked_children",
    "leaked_fds",
    "leaked_temp_entries",
    "leaked_threads",
    "open_fds",
    "processes",
    "temp_entries",
]


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


def open_fds() -> dict[int, str]:
    """{fd: what it points at} for this process's open file descriptors."""
    out = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            out[int(entry)] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue  # the directory listing's own fd, closed by now
    return out


def leaked_fds(before: dict[int, str], *, timeout: float) -> dict[int, str]:
    """{fd: target} of descriptors opened since `before` and still open after `timeout` seconds
    (the session-scoped fixtures' own aside: see SESSION_FDS)."""

    def leaked() -> dict[int, str]:
        gc.collect()  # what only garbage holds open (an unreferenced event loop's self-pipe) is not a leak
        now = open_fds()
        return {
            fd: target
            for fd, target in now.items()
            if before.get(fd) != target and fd not in SESSION_FDS and not target.startswith("anon_inode:")
        }

    try:
        wait_for(lambda: not leaked(), timeout=timeout, what="file descriptors to close")
    except TimeoutError:
        return {fd: _describe(target) for fd, target in leaked().items()}
    return {}


def _describe(target: str) -> str:
    """A socket's kind and addresses from /proc/net (a bare "socket:[inode]" says little)."""
    if not target.startswith("socket:["):
        return target
    inode = target[len("socket:[") : -1]
    for table in ("tcp", "tcp6", "unix", "udp"):
        try:
            lines = Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if table == "unix" and len(fields) >= 7 and fields[6] == inode:
                return f"{target} unix {fields[7] if len(fields) > 7 else '(unnamed)'}"
            if table != "unix" and len(fields) >= 10 and fields[9] == inode:
                return f"{target} {table} {fields[1]} -> {fields[2]}"
    return target


# Kept in the temporary directory on purpose by others: pytest's tmp_path base, and the agent CLIs'
# per-user runtime directories (claude's, and codex's bubblewrap mount targets: made on a first run,
# reused by later ones, never removed by them).
_NOT_OURS = re.compile(r"pytest-of-.*|claude-\d+|cc-socks|codex-bwrap-synthetic-mount-targets-\d+")


def temp_entries() -> set[str]:
    """What the tests' private temporary directory holds (what others keep there on purpose aside)."""
    return {name for name in os.listdir(tempfile.gettempdir()) if not _NOT_OURS.fullmatch(name)}


def leaked_temp_entries(before: set[str]) -> list[str]:
    """Entries a test module left in the temporary directory."""
    return sorted(temp_entries() - before)
