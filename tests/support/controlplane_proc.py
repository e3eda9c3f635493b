"""Run the control plane for tests: in-process uvicorn on a free port, or `python -m controlplane`.

`running_controlplane(config)` is an async context manager serving `create_app(config)` with uvicorn
on 127.0.0.1 (port 0 → the kernel picks), yielding the base URL; leaving it shuts the app down
(lifespan shutdown: followers, channels, engine). `start_controlplane_process(...)` runs the real
entry point as a subprocess and waits for /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn

from controlplane.app import create_app
from controlplane.config import ControlPlaneConfig

__all__ = ["REPO_ROOT", "ControlPlaneProcess", "cp_env", "running_controlplane", "start_controlplane_process"]

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def running_controlplane(config: ControlPlaneConfig) -> AsyncIterator[str]:
    """Serve the control plane in this event loop; yields its base URL."""
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, ws="none", lifespan="on", timeout_graceful_shutdown=3
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("control plane exited during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            await task
            raise TimeoutError("control plane did not start within 30s")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.services.stop_streams()
        server.should_exit = True
        await task


class ControlPlaneProcess:
    """A `python -m controlplane` subprocess."""

    def __init__(self, popen: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.popen = popen
        self.url = url
        self.log_path = log_path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait, SIGKILL if it hangs; idempotent."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        return self.popen.returncode


def cp_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "proto"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_controlplane_process(
    config_path: Path, port: int, log_path: Path, timeout: float = 60
) -> ControlPlaneProcess:
    """Start `python -m controlplane --config FILE` and wait until /health answers."""
    log = open(log_path, "ab")  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            [sys.executable, "-m", "controlplane", "--config", str(config_path)],
            cwd=str(REPO_ROOT),
            env=cp_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    proc = ControlPlaneProcess(popen, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while True:
        if popen.poll() is not None:
            raise RuntimeError(f"control plane exited with {popen.returncode}:\n{proc.log_text()[-3000:]}")
        try:
            if httpx.get(proc.url + "/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.stop()
            raise TimeoutError(f"control plane not healthy after {timeout}s:\n{proc.log_text()[-3000:]}")
        time.sleep(0.1)
