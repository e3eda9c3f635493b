"""Packaging: the package builds without a warning (a first `make run` shows no wall of setuptools text)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def _imports(package: str) -> set[str]:
    """Every module name `package`'s code imports (absolute imports, in full)."""
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", name, maxsplit=1)[0]).lower()


def _with_requirements(dists: set[str]) -> set[str]:
    """`dists` and what each of them requires (a package may import what a declared one brings)."""
    out = set(dists)
    for dist in dists:
        out |= {_dist(r) for r in (importlib.metadata.requires(dist) or []) if "extra ==" not in r}
    return out


@pytest.mark.parametrize(
    ("package", "extra"), [("daemon", "daemon"), ("controlplane", "controlplane"), ("berth_cli", "cli")]
)
def test_each_role_imports_only_what_its_extra_installs(package, extra):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_dist(d) for d in project["dependencies"] + project["optional-dependencies"][extra]}
    allowed = _with_requirements(declared)
    owners = importlib.metadata.packages_distributions()
    ours = {"daemon", "controlplane", "berth_cli", "berth_dev", "claude_sessions", "berth"}
    top = {name.split(".")[0] for name in _imports(package)}
    third_party = {_dist(d) for m in top - ours - set(sys.stdlib_module_names) for d in owners.get(m, [m])}
    assert third_party <= allowed, f"{package} imports {sorted(third_party - allowed)} outside berth[{extra}]"


def test_the_cli_and_the_daemon_stay_apart_from_the_control_plane_server():
    assert not {m for m in _imports("daemon") if m.split(".")[0] == "controlplane"}
    # The CLI shares only the status names (no third-party import) with the control plane.
    assert {m for m in _imports("berth_cli") if m.split(".")[0] == "controlplane"} == {"controlplane.statuses"}
    assert not {m for m in _imports("controlplane") if m.split(".")[0] in ("berth_cli", "berth_dev", "daemon")}
