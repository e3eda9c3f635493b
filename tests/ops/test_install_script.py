"""scripts/install-daemon.sh: dry runs change nothing, real runs write configs both programs accept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from controlplane.config import load_config as load_controlplane_config
from daemon.config import load_config as load_daemon_config
from tests.ops.support import child_env, run_install, scripts_dir


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with a private XDG config home and a PATH holding a `claude` (but no `codex`)."""
    agents = tmp_path / "agents"
    agents.mkdir()
    claude = agents / "claude"
    claude.write_text("#!/bin/sh\nexit 0\n")
    claude.chmod(0o755)
    return child_env(
        XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"),
        XDG_RUNTIME_DIR="/run/user/4242",
        HOME=str(tmp_path / "home"),
        PATH=f"{agents}:/usr/bin:/bin",
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_dry_run_prints_config_unit_and_systemctl_steps_and_writes_nothing(tmp_path, env):
    done = run_install("--user", "--dry-run", "--bin", str(scripts_dir(tmp_path)), env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    config_home = Path(env["XDG_CONFIG_HOME"])
    assert f"would write {config_home}/berth/daemon.toml" in out
    assert f"would write {config_home}/systemd/user/berth-daemon.service" in out
    assert "would run: systemctl --user daemon-reload" in out
    assert "would run: systemctl --user enable --now berth-daemon.service" in out
    assert "loginctl enable-linger" in out
    # It ends with what to do next: register the machine, and how API keys reach the agents.
    nxt = out[out.index("Next steps:") :]
    assert f"berth machine add {os.uname().nodename} unix:/run/user/4242/berth/daemon.sock" in nxt
    assert f"{config_home}/berth/agents.env" in nxt and "ANTHROPIC_API_KEY" in nxt and "OPENAI_API_KEY" in nxt
    assert "--tls-ca" in nxt and "--token-file" in nxt
    assert not config_home.exists()


def test_dry_run_for_a_system_unit_names_the_instance(tmp_path, env):
    done = run_install("--system", "root", "--dry-run", "--bin", str(scripts_dir(tmp_path)), env=env)
    assert done.returncode == 0, done.stderr
    assert "would write /etc/berth/daemon-root.toml" in done.stdout
    assert "would run: systemctl enable --now berth-daemon@root.service" in done.stdout
    assert 'unix_socket = "/run/berth/root/daemon.sock"' in done.stdout
    assert "berth machine add" in done.stdout and "/etc/berth/agents-root.env" in done.stdout


def test_user_install_writes_a_daemon_config_the_daemon_loads(tmp_path, env):
    root = tmp_path / "root"
    bin_dir = scripts_dir(tmp_path)
    done = run_install("--user", "--root", str(root), "--bin", str(bin_dir), env=env)
    assert done.returncode == 0, done.stderr
    config_path = root / env["XDG_CONFIG_HOME"].lstrip("/") / "berth" / "daemon.toml"
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = load_daemon_config(config_path)
    assert config.socket_path == Path("/run/user/4242/berth/daemon.sock")
    # The agent found on PATH is written with its absolute path (services do not see the login PATH) ...
    assert config.providers["claude_code"].binary == str(tmp_path / "agents" / "claude")
    # ... and the missing one says how to install it.
    assert "npm install -g @openai/codex" in config_path.read_text()
    unit = root / env["XDG_CONFIG_HOME"].lstrip("/") / "systemd" / "user" / "berth-daemon.service"
    assert f"ExecStart={bin_dir}/berth-daemon --config %E/berth/daemon.toml" in unit.read_text()
    assert "skipping: systemctl --user enable --now berth-daemon.service (--root)" in done.stdout


def test_system_and_controlplane_install_write_configs_both_programs_load(tmp_path, env):
    root = tmp_path / "root"
    done = run_install(
        "--system", "root", "--controlplane", "--root", str(root), "--bin", str(scripts_dir(tmp_path)), env=env
    )
    assert done.returncode == 0, done.stderr
    daemon = load_daemon_config(root / "etc" / "berth" / "daemon-root.toml")
    assert daemon.socket_path == Path("/run/berth/root/daemon.sock")
    assert daemon.listen.unix_socket_mode == 0o660
    controlplane = load_controlplane_config(root / "etc" / "berth" / "controlplane.toml")
    assert controlplane.state_dir == Path("/var/lib/berth-controlplane")
    assert controlplane.database_url.endswith("/var/lib/berth-controlplane/controlplane.sqlite3")
    assert (root / "etc" / "systemd" / "system" / "berth-controlplane.service").is_file()
    assert "create-token --owner admin --admin" in done.stdout


def test_an_existing_config_is_kept_unless_forced(tmp_path, env):
    root = tmp_path / "root"
    bin_dir = str(scripts_dir(tmp_path))
    config_path = root / "etc" / "berth" / "daemon-root.toml"
    config_path.parent.mkdir(parents=True)
    config_path.write_text("[daemon]\nmax_sessions = 3\n")
    done = run_install("--system", "root", "--root", str(root), "--bin", bin_dir, env=env)
    assert done.returncode == 0, done.stderr
    assert f"keeping existing {config_path}" in done.stdout
    assert load_daemon_config(config_path).max_sessions == 3
    done = run_install("--system", "root", "--root", str(root), "--bin", bin_dir, "--force", env=env)
    assert done.returncode == 0, done.stderr
    assert load_daemon_config(config_path).max_sessions == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--system", "../etc"], "--system: not a valid user name"),
        (["--system"], "--system needs a user name"),
        (["--bogus"], "unknown argument: --bogus"),
        (["--user", "--bin", "/nonexistent/bin"], "--bin: no such directory"),
        (["--user", "--enroll", "https://cp.example.com"], "--enroll needs a URL and a TOKEN"),
        (["--controlplane", "--enroll", "https://cp.example.com", "t"], "--enroll: say which daemon"),
        (["--user", "--enroll", "ftp://cp.example.com", "t"], "--enroll: not an http(s) URL"),
        (["--user", "--ca", "/etc/hostname"], "--ca goes with --enroll"),
        (["--user", "--enroll", "https://cp.example.com", "t", "--ca", "/nonexistent.pem"], "--ca: cannot read"),
    ],
    ids=[
        "bad-user-name",
        "missing-user",
        "unknown-flag",
        "missing-bin",
        "enroll-without-token",
        "enroll-without-daemon",
        "enroll-bad-url",
        "ca-without-enroll",
        "ca-unreadable",
    ],
)
def test_bad_arguments_fail_with_a_message_naming_the_option_and_write_nothing(tmp_path, env, args, message):
    root = tmp_path / "root"
    done = run_install(*args, "--root", str(root), env=env)
    assert done.returncode == 2
    assert message in done.stderr
    assert _files(root) == []


def test_script_is_executable():
    from tests.ops.support import INSTALL_SCRIPT

    assert os.access(INSTALL_SCRIPT, os.X_OK)
