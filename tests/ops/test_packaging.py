"""Packaging: the package builds without a warning (a first `make run` shows no wall of setuptools text)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_builds_without_a_build_warning(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Warning" not in output and "deprecated" not in output, output
    assert [p.name for p in tmp_path.glob("*.whl")] == ["berth-0.1.0-py3-none-any.whl"]
