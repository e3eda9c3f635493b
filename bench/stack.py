"""The system under test: scripted model server, real daemons and a real control plane (subprocesses)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.agents import CLAUDE_BIN, claude_env
from tests.support.controlplane_proc import ControlPlaneProcess, cp_env, start_controlplane_process
from tests.support.daemon_proc import DaemonProcess, daemon_env, default_config, to_toml
from tests.support.model_server import ModelServer
from tests.support.tls import make_self_signed

__all__ = ["STUB_AGENT", "Stack", "free_port", "proc_fds", "proc_rss_kib"]

REPO_ROOT = Path(__file__).resolve().parents[1]
STUB_AGENT = Path(__file__).resolve().parent / "stub_agent.py"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_rss_kib(pid: int) -> int:
    """Resident set size of one process (its children not included)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def proc_fds(pid: int) -> int:
    """Open file descriptors of one process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Stack:
    """Owns what it starts; close() stops everything (also after a failure)."""

    work: Path
    model: ModelServer | None = None
    daemons: dict[str, DaemonProcess] = field(default_factory=dict)
    controlplane: ControlPlaneProcess | None = None
    admin: httpx.Client | None = None
    machines: dict[str, str] = field(default_factory=dict)  # daemon name -> machine id
    tunnel_ca: Path | None = None

    def start_model(self) -> ModelServer:
        self.model = ModelServer()
        return self.model

    def claude_provider(self) -> dict[str, Any]:
        assert self.model is not None
        return {"binary": str(CLAUDE_BIN), "args": [], "env": claude_env(self.model.url, self.work / "home")}

    @staticmethod
    def stub_provider() -> dict[str, Any]:
        return {"binary": str(STUB_AGENT), "args": [], "env": {}}

    def start_daemon(self, name: str, *, pool: int, provider: dict[str, Any], max_sessions: int = 64) -> DaemonProcess:
        config = {
            "daemon": {
                "log_level": "WARNING",
                "log_format": "text",
                "max_sessions": max_sessions,
                "stop_grace_seconds": 3,
            },
            "providers": {"claude_code": provider},
            "pool": {"size": pool},
        }
        proc = _spawn_daemon(self.work / name, config)
        self.daemons[name] = proc
        return proc

    def stop_daemon(self, name: str) -> None:
        proc = self.daemons.pop(name)
        proc.stop()

    def start_dial_out_daemon(
        self, name: str, *, pool: int, provider: dict[str, Any], max_sessions: int = 64
    ) -> DaemonProcess:
        """A daemon the control plane never dials: enrolled as a dial-out machine, it opens the tunnel."""
        assert self.tunnel_ca is not None, "start_controlplane(tunnel=True) first"
        created = self.api("POST", "/api/v1/machines", {"name": f"bench-{name}", "dial_out": True}).json()
        enrolled = self.api("POST", "/api/v1/enroll", {"token": created["enrollment_token"]}).json()
        base = self.work / name
        base.mkdir(parents=True, exist_ok=True)
        credential = base / "machine.credential"
        credential.write_text(enrolled["credential"] + "\n")
        credential.chmod(0o600)
        config = {
            "daemon": {"log_level": "WARNING", "max_sessions": max_sessions, "stop_grace_seconds": 3},
            "providers": {"claude_code": provider},
            "pool": {"size": pool},
            "dial_out": {
                "address": enrolled["tunnel_address"],
                "credential_file": str(credential),
                "ca_file": str(self.tunnel_ca),
            },
        }
        proc = _spawn_daemon(base, config)
        self.daemons[name] = proc
        self.machines[name] = created["id"]
        deadline = time.monotonic() + 60
        while not self.api("GET", f"/api/v1/machines/{created['id']}").json()["online"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dial-out daemon {name} did not connect; see {proc.log_path}")
            time.sleep(0.05)
        return proc

    def start_controlplane(self, *, tunnel: bool = False) -> str:
        port = free_port()
        state = self.work / "cp"
        state.mkdir(parents=True, exist_ok=True)
        tunnel_table = ""
        if tunnel:  # a TLS tunnel listener, as a hosted control plane has
            cert, key = make_self_signed(self.work / "tunnel-tls")
            self.tunnel_ca = cert
            tunnel_table = f'\n[tunnel]\nlisten = "127.0.0.1:{free_port()}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        config = self.work / "controlplane.toml"
        config.write_text(
            "[server]\n"
            f"port = {port}\n"
            f'state_dir = "{state}"\n'
            f'database_url = "sqlite+aiosqlite:///{state}/cp.sqlite3"\n'
            'log_format = "text"\n'
            "sse_keepalive_seconds = 1\n"
            "ingest_max_backoff_seconds = 0.5\n"
            "max_body_bytes = 67108864\n"
            # Removing a 50k-file worktree on a busy disk can take longer than the default deadline.
            "rpc_deadline_seconds = 300\n"
            "daemon_deadline_seconds = 300\n" + tunnel_table
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "controlplane",
                "--config",
                str(config),
                "create-token",
                "--owner",
                "admin",
                "--admin",
            ],
            capture_output=True,
            text=True,
            env=cp_env(),
            cwd=str(REPO_ROOT),
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"create-token failed: {done.stderr.strip()}")
        token = done.stdout.strip().splitlines()[-1].strip()
        self.controlplane = start_controlplane_process(config, port, self.work / "controlplane.log")
        self.admin = httpx.Client(
            base_url=self.controlplane.url, headers={"Authorization": f"Bearer {token}"}, timeout=300
        )
        return self.controlplane.url

    @property
    def token(self) -> str:
        assert self.admin is not None
        return self.admin.headers["Authorization"].removeprefix("Bearer ")

    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        assert self.admin is not None
        resp = self.admin.request(method, path, json=body, **kw)
        if resp.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
        return resp

    def machine(self, daemon: str) -> str:
        if daemon not in self.machines:
            target = self.daemons[daemon].target
            m = self.api("POST", "/api/v1/machines", {"name": f"bench-{daemon}", "address": target}).json()
            self.machines[daemon] = m["id"]
        return self.machines[daemon]

    def workspace(self, repository: Path, daemon: str) -> str:
        body = {
            "name": f"{repository.name}-{daemon}",
            "repository": str(repository),
            "default_machine_id": self.machine(daemon),
        }
        return self.api("POST", "/api/v1/workspaces", body).json()["id"]

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        if self.controlplane is not None:
            self.controlplane.stop()
            self.controlplane = None
        for name in list(self.daemons):
            try:
                self.stop_daemon(name)
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                print(f"warning: stopping daemon {name}: {exc}", file=sys.stderr)
        if self.model is not None:
            self.model.close()
            self.model = None


def _spawn_daemon(base: Path, extra: dict[str, Any]) -> DaemonProcess:
    """Start the daemon (`python -m daemon`) and wait until it serves."""
    socket_dir = Path(tempfile.mkdtemp(prefix="berth-bench-", dir="/tmp"))
    socket_path = socket_dir / "d.sock"
    config = default_config(base, socket_path)
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value}
    base.mkdir(parents=True, exist_ok=True)
    config_path = base / "daemon.toml"
    config_path.write_text(to_toml(config))
    log_path = base / "daemon.log"
    with open(log_path, "ab") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config_path)],
            cwd=str(REPO_ROOT),
            env=daemon_env(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = DaemonProcess(
        popen, socket_path=socket_path, socket_dir=socket_dir, config_path=config_path, config=config, log_path=log_path
    )
    try:
        proc.wait_ready()
    except BaseException:
        proc.stop()
        raise
    return proc
