"""Packaging: the package builds without a warning (a first `make run` shows no wall of setuptools text)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_builds_without_a_build_warning(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Warning" not in output and "deprecated" not in output, output
    assert [p.name for p in tmp_path.glob("*.whl")] == ["berth-0.1.0-py3-none-any.whl"]


def test_make_installs_the_editable_package_without_a_warning(tmp_path):
    """The editable install line of `make install`, run as make writes it (without the dependencies)."""
    dry = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", ".venv/.installed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    [line] = [x for x in dry.splitlines() if " install " in x and " -e " in x]
    words = shlex.split(line)
    env = dict(os.environ)
    while "=" in words[0] and not words[0].startswith("-"):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # As make does first: a current pip, which shows what the build backend prints.
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--upgrade", "pip"],
        check=True,
        timeout=600,
        capture_output=True,
    )
    words[0] = str(venv / "bin" / "pip")
    words[words.index("-e") + 1] = str(ROOT)
    done = subprocess.run(
        [*words, "--no-deps"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
