"""Helpers shared by the ops tests: repo paths, the console-script directory, unit parsing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = [
    "INSTALL_SCRIPT",
    "REPO",
    "child_env",
    "free_port",
    "parse_unit",
    "run_install",
    "scripts_dir",
]

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-daemon.sh"


def scripts_dir(tmp_path: Path) -> Path:
    """A directory holding executable berth-daemon and berth-controlplane.

    The installed console scripts when this Python has them (make install puts them in .venv/bin);
    otherwise thin wrappers around `python -m` in tmp_path.
    """
    for candidate in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (candidate / "berth-daemon").is_file() and (candidate / "berth-controlplane").is_file():
            return candidate
    out = tmp_path / "bin"
    out.mkdir(exist_ok=True)
    for name, module in (("berth-daemon", "daemon"), ("berth-controlplane", "controlplane")):
        exe = out / name
        exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m {module} "$@"\n')
        exe.chmod(0o755)
    return out


def child_env(**extra: str) -> dict[str, str]:
    """The current environment plus PYTHONPATH for the repo and its generated proto package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "proto"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_install(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run scripts/install-daemon.sh with args (never through a shell)."""
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, str(INSTALL_SCRIPT), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=60,
    )


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]} (keys may repeat, as systemd allows)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
