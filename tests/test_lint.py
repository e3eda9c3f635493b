"""The lint gates: ruff (pinned in the test extras; the rule set E, F, I, B, UP, ASYNC, BLE in pyproject.toml)
finds nothing and would reformat nothing, and mypy finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_would_change_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_checks_the_rule_set_the_project_promises():
    import tomllib

    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert {"E", "F", "I", "B", "UP", "ASYNC", "BLE"} <= set(lint["select"])


def test_mypy_finds_nothing_in_daemon_and_controlplane():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


_PACKAGES = ("daemon", "controlplane", "claude_sessions", "berth_cli", "berth_dev")
_LONG = 420  # "no module over ~400 lines without a reason stated at its top"


def test_every_long_module_says_at_its_top_why_it_is_long():
    import ast

    unexplained = []
    for package in _PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name.endswith("_pb2.py") or path.name.endswith("_pb2_grpc.py"):
                continue  # generated from proto/
            text = path.read_text()
            if text.count("\n") <= _LONG:
                continue
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "Size:" not in doc:
                unexplained.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert unexplained == []
