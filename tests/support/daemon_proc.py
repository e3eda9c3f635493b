"""Run the real daemon as a subprocess (`python -m daemon --config FILE`) for tests.

`start_daemon(tmp_path, config=..., extra_env=...)` writes a TOML config (state,
repos and worktrees under tmp_path; the unix socket under a short /tmp/berth-*
directory because socket paths are limited to 107 bytes), starts the daemon and
waits until health says SERVING over the socket. Fixtures: `daemon` (one daemon
with the defaults) and `daemon_factory` (start several / with custom config);
both stop what they started and check that the process and socket are gone.

`config` is deep-merged over the defaults; provider entries may be plain dicts
or `daemon.config.ProviderConfig` objects.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = [
    "CHANNEL_OPTIONS",
    "REPO_ROOT",
    "DaemonProcess",
    "DaemonStartError",
    "daemon",
    "daemon_factory",
    "default_config",
    "inprocess_config",
    "start_daemon",
    "to_toml",
    "unix_socket_dir",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class DaemonStartError(RuntimeError):
    """The daemon exited or never became SERVING; the message carries its log tail."""


# -- TOML ---------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def to_toml(data: dict[str, Any]) -> str:
    """Serialize nested dicts of str/int/float/bool/Path/list (tables for dicts of dicts)."""
    lines: list[str] = []

    def table(prefix: list[str], body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in body.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            lines.append("[" + ".".join(json.dumps(p) for p in prefix) + "]")
        for key, value in scalars.items():
            if value is None:
                continue
            lines.append(f"{json.dumps(str(key))} = {_toml_value(value)}")
        for key, value in tables.items():
            table(prefix + [str(key)], value)

    table([], data)
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
        out.pop("name", None)  # ProviderConfig.name is the table key
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# -- the process ----------------------------------------------------------------


class DaemonProcess:
    """A running daemon subprocess and how to reach it."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        *,
        socket_path: Path,
        socket_dir: Path,
        config_path: Path,
        config: dict[str, Any],
        log_path: Path,
    ) -> None:
        self.popen = popen
        self.socket_path = socket_path
        self.config_path = config_path
        self.config = config
        self.log_path = log_path
        self._socket_dir = socket_dir
        self._channels: list[grpc.Channel] = []
        self._tcp_port: int | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def target(self) -> str:
        """gRPC target of the unix socket, e.g. "unix:/tmp/berth-x/d.sock"."""
        return f"unix:{self.socket_path}"

    @property
    def tcp_port(self) -> int | None:
        """The TLS TCP port actually bound (read from the daemon's startup log), or None."""
        if self._tcp_port is None:
            # The log is appended across restarts under one name: the last line is this run's.
            matches = re.findall(r'"tcp_port": (\d+)|tcp_port=(\d+)', self.log_text())
            if matches:
                self._tcp_port = int(matches[-1][0] or matches[-1][1])
        return self._tcp_port

    def log_text(self) -> str:
        """Everything the daemon wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        """The daemon's JSON log lines, parsed (non-JSON lines are skipped)."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return records

    def alive(self) -> bool:
        return self.popen.poll() is None

    def channel(self) -> grpc.Channel:
        """A sync channel to the unix socket (closed by stop())."""
        ch = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        self._channels.append(ch)
        return ch

    def aio_channel(self) -> grpc.aio.Channel:
        """A grpc.aio channel to the unix socket; the caller closes it (`async with`)."""
        return grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)

    def stub(self) -> daemon_pb2_grpc.DaemonServiceStub:
        """A sync DaemonService stub over a new channel (closed by stop())."""
        return daemon_pb2_grpc.DaemonServiceStub(self.channel())

    def health_status(self, service: str = "", timeout: float = 2.0) -> int | None:
        """The health status over the socket, or None when the daemon does not answer."""
        with grpc.insecure_channel(self.target) as ch:
            try:
                reply = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout
                )
            except grpc.RpcError:
                return None
            return reply.status

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                self.returncode = self.popen.wait()
                self._cleanup_dir()
                raise DaemonStartError(
                    f"daemon exited with {self.returncode} before SERVING:\n{self.log_text()[-4000:]}"
                )
            if self.socket_path.exists() and self.health_status(timeout=1.0) == health_pb2.HealthCheckResponse.SERVING:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DaemonStartError(f"daemon not SERVING after {timeout}s:\n{self.log_text()[-4000:]}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit and return its status."""
        self.returncode = self.popen.wait(timeout=timeout)
        self._cleanup_dir()
        return self.returncode

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, SIGKILL if it hangs; idempotent. Returns the exit status."""
        for ch in self._channels:
            ch.close()
        self._channels.clear()
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self.returncode = self.popen.returncode
        self._cleanup_dir()
        return self.returncode

    def _cleanup_dir(self) -> None:
        # Only the directory this helper made; a socket in it is the daemon's to remove
        # (a leftover one stays so the fixture's check can report it).
        if not self._socket_dir.exists():
            return
        if self.socket_path.parent != self._socket_dir or not self.socket_path.exists():
            shutil.rmtree(self._socket_dir, ignore_errors=True)


def default_config(base: Path, socket_path: Path) -> dict[str, Any]:
    """The test defaults: state, repos and worktrees under `base`, JSON logs at DEBUG."""
    return {
        "daemon": {
            "state_dir": str(base / "state"),
            "repos_root": str(base / "repos"),
            "worktrees_root": str(base / "worktrees"),
            "stop_grace_seconds": 5,
            "log_format": "json",
            "log_level": "DEBUG",
            "stop_agents_on_shutdown": True,
        },
        "listen": {"unix_socket": str(socket_path)},
    }


def daemon_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO_ROOT), str(REPO_ROOT / "proto")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    # Never let a test daemon talk to a real systemd.
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    env.update(extra_env or {})
    return env


def start_daemon(
    tmp_path: Path,
    *,
    config: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    args: list[str] | None = None,
    name: str = "daemon",
    wait: bool = True,
) -> DaemonProcess:
    """Start `python -m daemon` with a config under `tmp_path`; wait for SERVING unless wait=False.

    Starting again with the same `name` reuses that daemon's state (restart tests).
    """
    socket_dir = Path(tempfile.mkdtemp(prefix="berth-", dir="/tmp"))
    socket_path = socket_dir / "d.sock"
    # name="daemon" keeps tmp_path/state etc.; other names get tmp_path/<name>/state.
    base = tmp_path if name == "daemon" else tmp_path / name
    merged = _merge(default_config(base, socket_path), _plain(config or {}))
    if "unix_socket" in (config or {}).get("listen", {}):
        socket_path = Path(merged["listen"]["unix_socket"])
    tmp_path.mkdir(parents=True, exist_ok=True)
    config_path = tmp_path / f"{name}.toml"
    config_path.write_text(to_toml(merged))
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "ab") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config_path), *(args or [])],
            cwd=str(REPO_ROOT),
            env=daemon_env(extra_env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = DaemonProcess(
        popen, socket_path=socket_path, socket_dir=socket_dir, config_path=config_path, config=merged, log_path=log_path
    )
    if wait:
        try:
            proc.wait_ready()
        except BaseException:
            proc.stop()
            raise
    return proc


def _finish(proc: DaemonProcess) -> None:
    was_running = proc.alive()
    code = proc.stop()
    assert not proc.alive(), f"daemon pid {proc.pid} still running"
    if was_running:
        assert code == 0, f"daemon exited with {code} on SIGTERM:\n{proc.log_text()[-4000:]}"
        assert not proc.socket_path.exists(), f"daemon left its socket {proc.socket_path}"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A running daemon with the default test config; stopped (exit 0, socket gone) afterwards."""
    proc = start_daemon(tmp_path)
    try:
        yield proc
    finally:
        _finish(proc)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """`daemon_factory(config=..., extra_env=..., name=...)` starts daemons; all are stopped afterwards."""
    started: list[DaemonProcess] = []
    counter = iter(range(1, 1000))

    def start(**kwargs: Any) -> DaemonProcess:
        kwargs.setdefault("name", f"daemon{next(counter)}")
        proc = start_daemon(tmp_path, **kwargs)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        errors = []
        for proc in started:
            try:
                _finish(proc)
            except AssertionError as exc:
                errors.append(str(exc))
        assert not errors, "\n".join(errors)


# -- in-process servers ------------------------------------------------------------


@pytest.fixture
def unix_socket_dir() -> Iterator[Path]:
    """A short /tmp/berth-* directory for an in-process server's socket; must be empty afterwards."""
    path = Path(tempfile.mkdtemp(prefix="berth-", dir="/tmp"))
    try:
        yield path
    finally:
        leftovers = list(path.iterdir())
        shutil.rmtree(path, ignore_errors=True)
        assert not leftovers, f"left behind: {leftovers}"


def inprocess_config(tmp_path: Path, socket_dir: Path, *, daemon: dict[str, Any] | None = None, **listen: Any) -> Any:
    """A `DaemonConfig` like the subprocess defaults, for a `DaemonServer` run inside the test's loop."""
    from daemon.config import from_dict

    data = default_config(tmp_path, socket_dir / "d.sock")
    data["daemon"].update(daemon or {})
    data["listen"].update(listen)
    return from_dict(data)
