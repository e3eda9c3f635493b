"""`make run` (python -m berth_dev): one command gives a working system, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth_dev.devrun import SOCKET_LIMIT, socket_path_for
from tests.ops.support import REPO, child_env, free_port
from tests.support.agents import claude_env
from tests.support.git_repos import make_repo
from tests.support.model_server import ModelServer
from tests.support.waiting import wait_for

NODE_BIN = REPO / "node_modules" / ".bin"


@dataclass
class DevRunProc:
    popen: subprocess.Popen
    home: Path
    out_path: Path

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def facts(self) -> dict[str, Any]:
        return json.loads((self.home / "run.json").read_text())

    def wait_ready(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.popen.poll() is None, f"devrun exited {self.popen.returncode}:\n{self.output()}"
            if "Ctrl-C stops everything" in self.output():
                return self.facts()
            time.sleep(0.1)
        raise TimeoutError(f"devrun not ready after {timeout}s:\n{self.output()}")

    def interrupt(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        return self.popen.returncode


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A $BERTH_HOME short enough for its run/daemon.sock to fit a unix socket path."""
    parent = Path(tempfile.mkdtemp(prefix="bh-", dir="/tmp"))
    yield parent / "home"
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def start_devrun(tmp_path: Path) -> Iterator:
    started: list[DevRunProc] = []

    def start(home: Path, cwd: Path, port: int, path_prefix: str = "", extra_env: dict[str, str] | None = None):
        out_path = tmp_path / f"devrun-{len(started)}.out"
        env = child_env(BERTH_HOME=str(home), BERTH_PORT=str(port), **(extra_env or {}))
        env["PATH"] = path_prefix + "/usr/local/bin:/usr/bin:/bin"
        with open(out_path, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "berth_dev"],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = DevRunProc(popen, home, out_path)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.interrupt()


def _api(facts: dict[str, Any], method: str, path: str, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {facts['admin_token']}"}
    return httpx.request(method, facts["url"] + path, headers=headers, timeout=60, **kw)


def test_devrun_starts_everything_registers_the_machine_and_stops_on_ctrl_c(tmp_path, short_home, start_devrun):
    repo = make_repo(tmp_path / "myrepo")
    home = short_home
    port = free_port()
    run = start_devrun(home, repo, port)  # PATH without claude/codex
    facts = run.wait_ready()

    # Everything make run keeps is private: directories 0700, files 0600 (tokens, databases, logs).
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    private = [
        home / "run.json",
        home / "logs" / "controlplane.log",
        home / "logs" / "daemon.log",
        home / "controlplane" / "controlplane.sqlite3",
        home / "daemon" / "daemon.sqlite3",
    ]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (home / "logs", home / "controlplane", home / "daemon", home / "run"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert facts["url"] == f"http://127.0.0.1:{port}"
    assert facts["daemon_socket"] == str(home / "run" / "daemon.sock")
    assert Path(facts["daemon_socket"]).is_socket()
    assert facts["repository"] == str(repo.resolve())
    out = run.output()
    assert facts["admin_token"] in out and facts["url"] in out
    assert "npm install -g @anthropic-ai/claude-code" in out and "npm install -g @openai/codex" in out

    assert httpx.get(facts["url"] + "/health", timeout=10).json() == {"status": "ok"}
    machines = _api(facts, "GET", "/api/v1/machines").json()
    assert [(m["id"], m["name"], m["address"]) for m in machines] == [
        (facts["machine_id"], "local", "unix:" + facts["daemon_socket"])
    ]
    workspace = _api(facts, "GET", f"/api/v1/workspaces/{facts['workspace_id']}").json()
    assert workspace["repository"] == str(repo.resolve())
    assert workspace["default_machine_id"] == facts["machine_id"]

    pids = facts["pids"]
    assert run.interrupt() == 0, run.output()
    assert _gone(pids["daemon"]) and _gone(pids["controlplane"])
    assert not Path(facts["daemon_socket"]).exists()
    assert "Stopped." in run.output()


def test_devrun_again_reuses_token_machine_and_workspace(tmp_path, start_devrun):
    repo = make_repo(tmp_path / "myrepo")
    home = tmp_path / "home"
    first = start_devrun(home, repo, free_port())
    facts1 = first.wait_ready()
    assert first.interrupt() == 0
    # What an older, world-readable run left is made private again on the next start.
    os.chmod(home, 0o755)
    os.chmod(home / "controlplane" / "controlplane.sqlite3", 0o644)
    second = start_devrun(home, repo, free_port())
    facts2 = second.wait_ready()
    try:
        assert facts2["admin_token"] == facts1["admin_token"]
        assert facts2["machine_id"] == facts1["machine_id"]
        assert facts2["workspace_id"] == facts1["workspace_id"]
        assert len(_api(facts2, "GET", "/api/v1/machines").json()) == 1
        assert len(_api(facts2, "GET", "/api/v1/workspaces").json()) == 1
        assert len(_api(facts2, "GET", "/api/v1/tokens").json()) == 1
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE((home / "controlplane" / "controlplane.sqlite3").stat().st_mode) == 0o600
    finally:
        assert second.interrupt() == 0


def test_devrun_with_a_long_berth_home_puts_the_socket_in_tmp_and_uses_a_demo_repo(tmp_path, start_devrun):
    home = tmp_path / ("h" * 60) / ("o" * 60)
    assert len(str(home / "run" / "daemon.sock").encode()) > SOCKET_LIMIT
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    run = start_devrun(home, not_a_repo, free_port())
    facts = run.wait_ready()
    socket = Path(facts["daemon_socket"])
    try:
        assert str(socket).startswith("/tmp/berth-run-") and socket.is_socket()
        assert facts["repository"] == str((home / "demo-repo").resolve())
        assert (home / "demo-repo" / "README.md").is_file()
    finally:
        assert run.interrupt() == 0
        socket.parent.rmdir()  # empty once the daemon removed its socket


def test_socket_path_for_keeps_short_homes():
    assert socket_path_for(Path("/tmp/x")) == Path("/tmp/x/run/daemon.sock")


def test_the_printed_curl_line_launches_a_session_with_the_real_claude(
    tmp_path, start_devrun, model_server: ModelServer
):
    repo = make_repo(tmp_path / "myrepo")
    home = tmp_path / "home"
    # claude on PATH, pointed at the scripted model server (as a user's own login would point it at Anthropic).
    env = claude_env(model_server.url, tmp_path / "claude-home")
    run = start_devrun(home, repo, free_port(), path_prefix=f"{NODE_BIN}:", extra_env=env)
    facts = run.wait_ready()
    assert f"claude: {NODE_BIN / 'claude'}" in run.output()
    curl = next(line for line in run.output().splitlines() if line.startswith("curl "))
    # Perform exactly what the curl line says (parsed, never through a shell).
    argv = shlex.split(curl)
    url = next(a for a in argv if a.startswith("http://"))
    headers = dict(h.split(": ", 1) for h in (argv[i + 1] for i, a in enumerate(argv) if a == "-H"))
    body = argv[argv.index("-d") + 1]
    assert argv[argv.index("-X") + 1] == "POST"
    resp = httpx.post(url, headers=headers, content=body, timeout=120)
    assert resp.status_code == 200, resp.text
    ack = resp.json()
    assert ack["status"] == "ok", ack
    session_id = ack["payload"]["agent_session_id"]

    def replied() -> list[dict[str, Any]]:
        msgs = _api(facts, "GET", f"/api/sessions/{session_id}/messages").json()["messages"]
        return [m for m in msgs if m["role"] == "assistant" and "Say hello" in (m["content"].get("text") or "")]

    try:
        wait_for(replied, timeout=90, interval=0.1, what="the agent's answer stored as a message")
    except TimeoutError as exc:
        detail = _api(facts, "GET", f"/api/sessions/{session_id}").text
        logs = home / "logs"
        tails = {p.name: p.read_text(errors="replace")[-3000:] for p in logs.glob("*.log")}
        raise AssertionError(f"{exc}\nsession: {detail}\nlogs: {json.dumps(tails, indent=1)}") from exc
    assert run.interrupt() == 0, run.output()


def test_devrun_with_berth_dial_out_drives_the_daemon_through_its_tunnel_only(
    tmp_path, short_home, start_devrun, model_server: ModelServer
):
    repo = make_repo(tmp_path / "myrepo")
    env = claude_env(model_server.url, tmp_path / "claude-home")
    run = start_devrun(
        short_home, repo, free_port(), path_prefix=f"{NODE_BIN}:", extra_env={**env, "BERTH_DIAL_OUT": "1"}
    )
    facts = run.wait_ready()
    assert facts["dial_out"] is True
    assert "dial-out" in run.output()
    # The control plane knows no address for the machine: only the tunnel the daemon opened reaches it.
    [machine] = _api(facts, "GET", "/api/v1/machines").json()
    assert machine["id"] == facts["machine_id"] and machine["name"] == "local-dial-out"
    assert machine["address"] == "tunnel" and machine["dial_out"] is True and machine["online"] is True
    assert "[dial_out]" in (short_home / "daemon.toml").read_text()
    assert stat.S_IMODE((short_home / "daemon.credential").stat().st_mode) == 0o600
    workspace = _api(facts, "GET", f"/api/v1/workspaces/{facts['workspace_id']}").json()
    assert workspace["default_machine_id"] == machine["id"]

    ack = _api(
        facts, "POST", f"/api/v1/workspaces/{facts['workspace_id']}/sessions", json={"initial_prompt": "Say hello"}
    ).json()
    assert ack["status"] == "ok", ack
    session_id = ack["payload"]["agent_session_id"]

    def replied() -> bool:
        msgs = _api(facts, "GET", f"/api/sessions/{session_id}/messages").json()["messages"]
        return any(m["role"] == "assistant" and "Say hello" in (m["content"].get("text") or "") for m in msgs)

    wait_for(replied, timeout=90, interval=0.1, what="the agent's answer, through the tunnel")
    pids = facts["pids"]
    assert run.interrupt() == 0, run.output()
    assert _gone(pids["daemon"]) and _gone(pids["controlplane"])


def test_devrun_on_a_taken_port_says_to_set_berth_port_and_leaves_no_process(tmp_path, start_devrun):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = start_devrun(tmp_path / "home", make_repo(tmp_path / "repo"), port)
        assert run.popen.wait(timeout=120) == 1
    out = run.output()
    assert f"port {port} is taken; run with BERTH_PORT=" in out
    assert not (tmp_path / "home" / "run.json").exists()
    assert not (tmp_path / "home" / "run" / "daemon.sock").exists()  # the daemon was stopped
