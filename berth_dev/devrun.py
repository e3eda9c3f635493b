"""`make run`: the whole system on one machine — a daemon on a unix socket and the control plane.

State lives in $BERTH_HOME (default ./.berth): configs, the daemon's store, the SQLite database,
logs, and run.json ({url, admin_token, machine_id, daemon_socket, workspace_id}, mode 0600).
Ctrl-C (or SIGTERM) stops both children. Running it again reuses the token, machine and workspace.

With BERTH_DIAL_OUT=1 the control plane is never told the daemon's socket: it listens for tunnels on
loopback, the machine `local-dial-out` is enrolled on every start (`berth-daemon enroll`'s code), and
the daemon dials out to it, as a laptop behind NAT would dial a hosted control plane.

Size: two child processes' whole lifecycle (configs, first token, start, readiness, stop on a
signal) in one place, so that `make run` reads top to bottom.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from berth_cli.runfile import BootstrapError, create_admin_token, read_run_json, write_run_json
from daemon.enrollment import enroll

__all__ = ["DevRun", "find_agents", "main", "socket_path_for"]

SOCKET_LIMIT = 100  # bytes; sun_path holds 107 plus NUL, keep a margin
MACHINE_NAME = "local"
DIAL_OUT_MACHINE_NAME = "local-dial-out"
INSTALL_HINTS = {"claude": "npm install -g @anthropic-ai/claude-code", "codex": "npm install -g @openai/codex"}
PROVIDER_BINARIES = {"claude_code": "claude", "codex": "codex"}

console = Console(highlight=False, soft_wrap=True)  # never break the URL, token or curl line


class DevRunError(Exception):
    """A startup step failed; the message says which and where its log is."""


def socket_path_for(home: Path) -> Path:
    """The daemon socket: in $BERTH_HOME/run when that path fits a unix socket, else a short /tmp dir."""
    candidate = home / "run" / "daemon.sock"
    if len(str(candidate).encode()) <= SOCKET_LIMIT:
        return candidate
    return Path(tempfile.mkdtemp(prefix="berth-run-", dir="/tmp")) / "daemon.sock"


def find_agents() -> dict[str, str | None]:
    """provider → absolute path of its CLI on PATH (None when missing)."""
    return {provider: shutil.which(binary) for provider, binary in PROVIDER_BINARIES.items()}


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _set_pdeathsig() -> None:
    """In the child: get SIGTERM if devrun dies without cleaning up (e.g. SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class DevRun:
    """Starts, wires and stops a local daemon and control plane."""

    home: Path
    port: int = 8080
    host: str = "127.0.0.1"
    dial_out: bool = False
    children: list[Child] = field(default_factory=list)
    socket: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- configs ------------------------------------------------------------------------------

    def write_configs(self, agents: dict[str, str | None]) -> tuple[Path, Path]:
        self.home.mkdir(parents=True, exist_ok=True)
        _make_private(self.home)
        self.socket = self._reuse_or_pick_socket()
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        providers = ""
        for provider, path in agents.items():
            if path:
                providers += f"\n[providers.{provider}]\nbinary = {_toml_str(path)}\n"
        daemon_toml = self.home / "daemon.toml"
        daemon_toml.write_text(
            "# Written by `make run` (berth_dev/devrun.py) on every start.\n"
            "[daemon]\n"
            f"state_dir = {_toml_str(str(self.home / 'daemon'))}\n"
            f"repos_root = {_toml_str(str(self.home / 'repos'))}\n"
            f"worktrees_root = {_toml_str(str(self.home / 'worktrees'))}\n"
            "stop_agents_on_shutdown = true\n"
            "\n[listen]\n"
            f"unix_socket = {_toml_str(str(self.socket))}\n"
            "unix_socket_mode = 0o600\n" + providers
        )
        cp_toml = self.home / "controlplane.toml"
        cp_toml.write_text(
            "# Written by `make run` (berth_dev/devrun.py) on every start.\n"
            "[server]\n"
            f"host = {_toml_str(self.host)}\n"
            f"port = {self.port}\n"
            f"state_dir = {_toml_str(str(self.home / 'controlplane'))}\n"
            + ('\n[tunnel]\nlisten = "127.0.0.1:0"\n' if self.dial_out else "")
        )
        return daemon_toml, cp_toml

    def _reuse_or_pick_socket(self) -> Path:
        # A /tmp fallback chosen on an earlier run is kept, so the registered machine stays valid.
        facts = self.read_facts()
        previous = facts.get("daemon_socket")
        if previous and not str(previous).startswith(str(self.home)) and Path(previous).parent.is_dir():
            return Path(previous)
        return socket_path_for(self.home)

    # --- children -----------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> Child:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,  # Ctrl-C reaches devrun only; it stops the children in order
                # devrun spawns both children before it starts any thread (see main), so this is safe.
                preexec_fn=_set_pdeathsig,  # noqa: PLW1509
            )
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def spawn_daemon(self, config: Path) -> Child:
        return self._spawn("daemon", [sys.executable, "-m", "daemon", "--config", str(config)])

    def spawn_controlplane(self, config: Path) -> Child:
        return self._spawn("controlplane", [sys.executable, "-m", "controlplane", "--config", str(config)])

    def wait_daemon(self, child: Child) -> None:
        """Until the daemon's health check answers SERVING on its socket."""
        assert self.socket is not None
        socket = self.socket
        target = f"unix:{socket}"

        def serving() -> bool:
            if not socket.exists():
                return False
            with grpc.insecure_channel(target) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=2
                    )
                except grpc.RpcError:
                    return False
                return reply.status == health_pb2.HealthCheckResponse.SERVING

        self._wait(child, serving, 60, "the daemon to serve on " + str(socket))

    def wait_controlplane(self, child: Child) -> None:
        """Until the control plane answers HTTP (uvicorn binds only after the app's startup)."""

        def answering() -> bool:
            try:
                httpx.get(self.url + "/openapi.json", timeout=2)
            except httpx.HTTPError:
                return False
            return True

        try:
            self._wait(child, answering, 90, f"the control plane to answer on {self.url}")
        except DevRunError as exc:
            if "address already in use" in str(exc).lower():
                raise DevRunError(f"port {self.port} is taken; run with BERTH_PORT=<another port>\n{exc}") from None
            raise

    def _wait(self, child: Child, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise DevRunError(
                    f"the {child.name} exited with status {child.proc.returncode} while waiting for {what}; "
                    f"its log ({child.log_path}):\n{child.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.1)
        raise DevRunError(f"timed out waiting for {what}; see {child.log_path}:\n{child.log_tail()}")

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the children, the last started first; SIGKILL what outlives the grace. Idempotent."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                    child.proc.wait()
        self.children.clear()

    # --- wiring through the REST API ---------------------------------------------------------

    def read_facts(self) -> dict[str, Any]:
        return read_run_json(self.home / "run.json")

    def api(self, token: str, method: str, path: str, body: Any = None) -> Any:
        resp = httpx.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        if resp.status_code >= 400:
            raise DevRunError(f"{method} {path} → HTTP {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    def admin_token(self, cp_config: Path) -> str:
        """The token from an earlier run.json when it still works, else a new admin token."""
        previous = self.read_facts().get("admin_token")
        if previous:
            resp = httpx.get(self.url + "/api/v1/machines", headers={"Authorization": f"Bearer {previous}"}, timeout=10)
            if resp.status_code == 200:
                return previous
        try:
            return create_admin_token(cp_config, "admin", env=_child_env())
        except BootstrapError as exc:
            raise DevRunError(str(exc)) from None

    def ensure_machine(self, token: str) -> str:
        address = f"unix:{self.socket}"
        for machine in _items(self.api(token, "GET", "/api/v1/machines"), "machines"):
            if machine.get("name") == MACHINE_NAME:
                if machine.get("address") != address:
                    self.api(token, "PATCH", f"/api/v1/machines/{machine['id']}", {"address": address})
                return machine["id"]
        return self.api(token, "POST", "/api/v1/machines", {"name": MACHINE_NAME, "address": address})["id"]

    def ensure_workspace(self, token: str, machine_id: str, repository: Path) -> str:
        for ws in _items(self.api(token, "GET", "/api/v1/workspaces"), "workspaces"):
            if ws.get("repository") == str(repository):
                if ws.get("default_machine_id") != machine_id:
                    self.api(token, "PATCH", f"/api/v1/workspaces/{ws['id']}", {"default_machine_id": machine_id})
                return ws["id"]
        body = {"name": repository.name, "repository": str(repository), "default_machine_id": machine_id}
        return self.api(token, "POST", "/api/v1/workspaces", body)["id"]

    def ensure_dial_out_machine(self, token: str) -> tuple[str, str]:
        """The dial-out machine's id and a fresh enrollment token for it (created on the first run)."""
        for machine in _items(self.api(token, "GET", "/api/v1/machines"), "machines"):
            if machine.get("name") == DIAL_OUT_MACHINE_NAME:
                enrollment = self.api(token, "POST", f"/api/v1/machines/{machine['id']}/enrollment")
                return machine["id"], enrollment["enrollment_token"]
        created = self.api(token, "POST", "/api/v1/machines", {"name": DIAL_OUT_MACHINE_NAME, "dial_out": True})
        return created["id"], created["enrollment_token"]

    def enroll_daemon(self, daemon_config: Path, enrollment_token: str) -> None:
        """What `berth-daemon enroll` does, writing the [dial_out] table into the daemon's config."""
        log_path = self.home / "logs" / "enroll.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            status = enroll(self.url, enrollment_token, ca_file=None, config_path=str(daemon_config))
        if status != 0:
            raise DevRunError(f"enrolling the daemon failed; see {log_path}:\n{log_path.read_text()[-2000:]}")

    def wait_online(self, child: Child, token: str, machine_id: str) -> None:
        """Until the control plane says the dial-out machine's tunnel is open."""

        def online() -> bool:
            return bool(self.api(token, "GET", f"/api/v1/machines/{machine_id}").get("online"))

        self._wait(child, online, 60, "the daemon's tunnel to the control plane")

    def write_facts(self, facts: dict[str, Any]) -> Path:
        return write_run_json(self.home / "run.json", facts)


def _items(data: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get(key), list):
        return data[key]
    return []


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # gRPC's fork handlers can crash the daemon's forked agent children before they exec.
    env.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    repo = Path(__file__).resolve().parents[1]
    extra = [str(repo), str(repo / "proto")]
    env["PYTHONPATH"] = os.pathsep.join(extra + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def demo_repository(home: Path) -> Path:
    """The git repository sessions work in: the current one, else a small demo repo in $BERTH_HOME."""
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=False, capture_output=True, text=True)
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], check=False, capture_output=True, text=True)
    if top.returncode == 0 and top.stdout.strip() and head.returncode == 0:  # a repo with a commit
        return Path(top.stdout.strip()).resolve()
    demo = home / "demo-repo"
    if not (demo / ".git").exists():
        demo.mkdir(parents=True, exist_ok=True)
        (demo / "README.md").write_text("# Demo repository\n\nCreated by `make run` for Berth's agents to work in.\n")
        git = ["git", "-C", str(demo), "-c", "user.name=Berth", "-c", "user.email=berth@localhost"]
        for args in (["init", "-q", "-b", "main"], ["add", "README.md"], ["commit", "-q", "-m", "Demo repository"]):
            done = subprocess.run([*git, *args], check=False, capture_output=True, text=True)
            if done.returncode != 0:
                raise DevRunError(f"creating the demo repository failed: git {' '.join(args)}: {done.stderr.strip()}")
    return demo.resolve()


def print_summary(facts: dict[str, Any], agents: dict[str, str | None]) -> None:
    body = json.dumps({"initial_prompt": "Say hello and list the files in this repository."})
    curl = (
        f"curl -sS -X POST {facts['url']}/api/v1/workspaces/{facts['workspace_id']}/sessions "
        f"-H {shlex.quote('Authorization: Bearer ' + facts['admin_token'])} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    console.print("\n[bold green]Berth is running.[/bold green]")
    console.print(f"  control plane  [bold]{facts['url']}[/bold]   (API docs: {facts['url']}/docs)")
    console.print(f"  admin token    [bold yellow]{facts['admin_token']}[/bold yellow]")
    console.print(f"  daemon socket  {facts['daemon_socket']}   (machine {facts['machine_id']})")
    if facts.get("dial_out"):
        console.print("  dial-out       the daemon reaches the control plane through its tunnel (BERTH_DIAL_OUT=1)")
    console.print(f"  workspace      {facts['workspace_id']} → {facts['repository']}")
    console.print(f"  facts          {facts['run_json']}   logs: {facts['logs']}")
    for provider, path in agents.items():
        binary = PROVIDER_BINARIES[provider]
        if path:
            console.print(f"  agent          {binary}: {path}")
        else:
            console.print(
                f"  agent          [yellow]{binary} not found on PATH[/yellow]; install it: {INSTALL_HINTS[binary]}"
            )
    if not any(agents.values()):
        console.print("[yellow]No agent CLI found: launches will fail until you install one (see above).[/yellow]")
    console.print("\nLaunch a session:")
    console.print(curl, soft_wrap=True)
    berth = Path(sys.executable).parent / "berth"
    berth_cmd = os.path.relpath(berth) if berth.exists() else "berth"
    console.print(
        f"Then follow it:  [bold]{berth_cmd} tail <agent_session_id>[/bold]   "
        "(berth reads the run.json above: from $BERTH_HOME, or in .berth/ here or in a parent)"
    )
    console.print(f"Or launch and follow in one go:  [bold]{berth_cmd} launch -p 'Say hello' --follow[/bold]")
    console.print("\nCtrl-C stops everything.\n")


def _make_private(home: Path) -> None:
    """$BERTH_HOME holds tokens, conversations and keys: its directories 0700, its files 0600 (also what an
    earlier, less careful run left). The checkouts under worktrees/ and repos/ are left as git wrote them."""
    os.chmod(home, 0o700)
    for entry in home.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_file():
            os.chmod(entry, 0o600)
        elif entry.is_dir() and entry.name in _STATE_DIRS:
            os.chmod(entry, 0o700)
            for sub in entry.rglob("*"):
                if not sub.is_symlink():
                    os.chmod(sub, 0o700 if sub.is_dir() else 0o600)


# The directories of $BERTH_HOME that hold state (not checkouts), made private on every start.
_STATE_DIRS = ("daemon", "controlplane", "logs", "run")


def main() -> int:
    """Entry point of `make run` (python -m berth_dev)."""
    # Everything make run and its children create is private to the developer (0700 / 0600).
    os.umask(0o077)
    home = Path(os.environ.get("BERTH_HOME") or ".berth").resolve()
    try:
        port = int(os.environ.get("BERTH_PORT") or 8080)
    except ValueError:
        console.print("[red]BERTH_PORT must be a port number[/red]")
        return 2
    run = DevRun(home=home, port=port, dial_out=os.environ.get("BERTH_DIAL_OUT", "") not in ("", "0"))
    stop_requested = False

    def on_signal(signum, frame) -> None:
        nonlocal stop_requested
        stop_requested = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agents = find_agents()
        daemon_toml, cp_toml = run.write_configs(agents)
        if run.dial_out:
            # The daemon needs its enrollment first; this process has opened no gRPC channel yet
            # when it spawns the daemon (grpc's threads and fork don't mix).
            cp = run.spawn_controlplane(cp_toml)
            with console.status(f"Starting the control plane on {run.url}…"):
                run.wait_controlplane(cp)
            token = run.admin_token(cp_toml)
            machine_id, enrollment_token = run.ensure_dial_out_machine(token)
            run.enroll_daemon(daemon_toml, enrollment_token)
            daemon = run.spawn_daemon(daemon_toml)
            with console.status("Starting the daemon and its tunnel…"):
                run.wait_daemon(daemon)
                run.wait_online(daemon, token, machine_id)
        else:
            # Both are spawned before this process opens any gRPC channel (grpc's threads and fork don't mix).
            daemon = run.spawn_daemon(daemon_toml)
            cp = run.spawn_controlplane(cp_toml)
            with console.status("Starting the daemon…"):
                run.wait_daemon(daemon)
            with console.status(f"Starting the control plane on {run.url}…"):
                run.wait_controlplane(cp)
            token = run.admin_token(cp_toml)
            machine_id = run.ensure_machine(token)
        repository = demo_repository(home)
        workspace_id = run.ensure_workspace(token, machine_id, repository)
        facts = {
            "url": run.url,
            "admin_token": token,
            "machine_id": machine_id,
            "daemon_socket": str(run.socket),
            "dial_out": run.dial_out,
            "workspace_id": workspace_id,
            "repository": str(repository),
            "pids": {"daemon": daemon.proc.pid, "controlplane": cp.proc.pid},
            "logs": str(home / "logs"),
        }
        facts["run_json"] = str(run.write_facts(facts))
        print_summary(facts, agents)
        while True:
            for child in run.children:
                if child.proc.poll() is not None:
                    raise DevRunError(
                        f"the {child.name} exited with status {child.proc.returncode}; its log ({child.log_path}):\n"
                        f"{child.log_tail()}"
                    )
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("Stopping…")
        return 0
    except DevRunError as exc:
        console.print(f"[bold red]make run: {exc}[/bold red]")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.stop()
        if stop_requested:
            console.print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
