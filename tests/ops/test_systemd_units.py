"""The systemd units: they pass `systemd-analyze verify` as installed, and say what the issue asks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ops.support import REPO, child_env, parse_unit, run_install, scripts_dir

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")

DAEMON_SYSTEM = REPO / "systemd" / "berth-daemon@.service"
DAEMON_USER = REPO / "systemd" / "user" / "berth-daemon.service"
CONTROLPLANE = REPO / "systemd" / "berth-controlplane.service"


def _service(path: Path) -> dict[str, str]:
    return dict(parse_unit(path.read_text())["Service"])


def _verify(unit: Path, *, user: bool, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    args = [SYSTEMD_ANALYZE, *(["--user"] if user else []), "verify", str(unit)]
    env = child_env(XDG_RUNTIME_DIR=str(runtime_dir), SYSTEMD_LOG_LEVEL="notice")
    return subprocess.run(args, check=False, capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """Install every unit with install-daemon.sh --root into tmp_path/root; return that root."""
    root = tmp_path / "root"
    bin_dir = scripts_dir(tmp_path)
    env = child_env(XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"), XDG_RUNTIME_DIR="/run/user/1000")
    for args in (["--system", "root"], ["--user"], ["--controlplane"]):
        done = run_install(*args, "--root", str(root), "--bin", str(bin_dir), env=env)
        assert done.returncode == 0, done.stderr
    return root


@needs_analyze
def test_installed_system_daemon_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path):
    unit_dir = installed / "etc" / "systemd" / "system"
    assert (unit_dir / "berth-daemon@.service").is_file()
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    # A template is verified through an instance name; the template file itself is what is read.
    done = _verify(unit_dir / "berth-daemon@root.service", user=False, runtime_dir=runtime)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "berth-daemon" not in done.stderr, done.stderr


@needs_analyze
def test_installed_user_daemon_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path):
    unit = installed / str(tmp_path / "home" / ".config").lstrip("/") / "systemd" / "user" / "berth-daemon.service"
    assert unit.is_file()
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    done = _verify(unit, user=True, runtime_dir=runtime)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "berth-daemon" not in done.stderr, done.stderr


@needs_analyze
def test_installed_controlplane_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path):
    unit = installed / "etc" / "systemd" / "system" / "berth-controlplane.service"
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    done = _verify(unit, user=False, runtime_dir=runtime)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "berth-controlplane" not in done.stderr, done.stderr


@needs_analyze
def test_verify_catches_a_missing_executable(tmp_path: Path):
    """The verify test has teeth: a unit whose ExecStart binary is missing fails it."""
    broken = tmp_path / "berth-controlplane.service"
    broken.write_text(CONTROLPLANE.read_text())  # ExecStart=/usr/local/bin/berth-controlplane, not installed here
    if Path("/usr/local/bin/berth-controlplane").exists():
        pytest.skip("/usr/local/bin/berth-controlplane exists on this machine")
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    done = _verify(broken, user=False, runtime_dir=runtime)
    assert done.returncode != 0
    assert "not executable" in done.stderr or "No such file" in done.stderr


@pytest.mark.parametrize("unit", [DAEMON_SYSTEM, DAEMON_USER], ids=["system", "user"])
def test_daemon_units_notify_keep_agents_on_restart_and_leave_home_alone(unit: Path):
    service = _service(unit)
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0
    # Restarting the daemon must not kill the agents it started (it re-adopts them on start).
    assert service["KillMode"] == "process"
    assert service["Restart"] == "on-failure"
    assert service["RuntimeDirectory"].startswith("berth")
    assert service["StateDirectory"].startswith("berth")
    assert service["RuntimeDirectoryPreserve"] == "restart"
    # Agents work in the user's repositories.
    assert "ProtectHome" not in service and "PrivateTmp" not in service
    assert "--config" in service["ExecStart"]
    assert service["Environment"] == "GRPC_ENABLE_FORK_SUPPORT=false"


def test_system_daemon_unit_runs_as_the_instance_user():
    service = _service(DAEMON_SYSTEM)
    assert service["User"] == "%i"
    assert service["RuntimeDirectory"] == "berth/%i"
    assert service["StateDirectory"] == "berth/%i"
    assert "/etc/berth/daemon-%i.toml" in service["ExecStart"]
    assert dict(parse_unit(DAEMON_SYSTEM.read_text())["Install"])["WantedBy"] == "multi-user.target"


def test_user_daemon_unit_has_no_user_and_reads_the_xdg_config():
    sections = parse_unit(DAEMON_USER.read_text())
    service = dict(sections["Service"])
    assert "User" not in service
    assert "%E/berth/daemon.toml" in service["ExecStart"]
    assert dict(sections["Install"])["WantedBy"] == "default.target"
    assert "loginctl enable-linger" in DAEMON_USER.read_text()


def test_controlplane_unit_runs_unprivileged_with_its_own_state():
    service = _service(CONTROLPLANE)
    assert service["User"] == "berth"
    assert service["StateDirectory"] == "berth-controlplane"
    assert service["Restart"] == "on-failure"
    assert "/etc/berth/controlplane.toml" in service["ExecStart"]


def test_daemon_started_as_the_installed_user_unit_would_be_notifies_ready_watchdog_and_stopping(tmp_path: Path):
    """The installed unit's ExecStart with the installed config, under systemd's environment."""
    import os
    import shlex
    import signal
    import socket
    import tempfile
    import time

    runtime = Path(tempfile.mkdtemp(prefix="berth-rt-", dir="/tmp"))  # short: the socket lives here
    root, config_home, state = tmp_path / "root", tmp_path / "config", tmp_path / "state"
    env = child_env(XDG_CONFIG_HOME=str(config_home), XDG_RUNTIME_DIR=str(runtime), PATH="/usr/bin:/bin")
    done = run_install("--user", "--root", str(root), "--bin", str(scripts_dir(tmp_path)), env=env)
    assert done.returncode == 0, done.stderr
    installed_config = root / str(config_home).lstrip("/")
    unit = parse_unit((installed_config / "systemd" / "user" / "berth-daemon.service").read_text())
    exec_start = dict(unit["Service"])["ExecStart"].replace("%E", str(installed_config))
    # What systemd provides: RuntimeDirectory=, StateDirectory=, NOTIFY_SOCKET, WATCHDOG_USEC.
    (runtime / "berth").mkdir()
    state.mkdir()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(runtime / "notify"))
    notify.settimeout(0.2)
    env.update(
        NOTIFY_SOCKET=str(runtime / "notify"),
        WATCHDOG_USEC="1000000",
        STATE_DIRECTORY=str(state),
        RUNTIME_DIRECTORY=str(runtime / "berth"),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
    )
    env.pop("WATCHDOG_PID", None)
    for key, value in unit["Service"]:
        if key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
    proc = subprocess.Popen(
        shlex.split(exec_start), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    sock_path = runtime / "berth" / "daemon.sock"
    messages: list[str] = []

    def receive_until(word: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None or word == "STOPPING=1", proc.stderr.read().decode() if proc.stderr else ""
            try:
                messages.append(notify.recv(4096).decode())
            except TimeoutError:
                continue
            if word in messages[-1].split("\n"):
                return
        raise TimeoutError(f"no {word} in {messages}")

    try:
        receive_until("READY=1")
        assert sock_path.is_socket()  # READY only once the gRPC server listens on the configured socket
        receive_until("WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert proc.wait(timeout=30) == 0
        assert not sock_path.exists()
        assert (state / "daemon.sqlite3").exists() or any(state.iterdir()), "STATE_DIRECTORY was not used"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        notify.close()
        for p in sorted(runtime.rglob("*"), reverse=True):
            p.unlink() if not p.is_dir() else p.rmdir()
        runtime.rmdir()
