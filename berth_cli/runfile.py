"""What `make run` and the CLI share: run.json (read and written, mode 0600) and the first admin token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["BootstrapError", "create_admin_token", "read_run_json", "write_run_json"]


class BootstrapError(RuntimeError):
    """The control plane's create-token command failed (its words are the message)."""


def read_run_json(path: Path) -> dict[str, Any]:
    """The facts in a run.json ({} when it is missing, unreadable or not an object)."""
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def write_run_json(path: Path, facts: dict[str, Any]) -> Path:
    """Replace `path` with `facts` atomically, readable by its owner only (it holds an admin token)."""
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(facts, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def create_admin_token(config: str | Path | None, owner: str = "admin", env: dict[str, str] | None = None) -> str:
    """A new admin token of `owner`, made in the control plane's database (no API call: run it where the
    control plane runs, with its config)."""
    argv = [sys.executable, "-m", "controlplane"]
    if config:
        argv += ["--config", str(config)]
    argv += ["create-token", "--owner", owner, "--admin"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=120)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BootstrapError(f"create-token failed: {done.stderr.strip() or done.stdout.strip()}")
    return lines[-1].strip()
