"""`python -m controlplane`: migrate, create-token (printed once, stored hashed), serve until SIGTERM;
bad configs fail clearly. Also the config loader's defaults and overrides."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from controlplane.config import from_dict
from tests.support.controlplane_proc import REPO_ROOT, cp_env, start_controlplane_process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        cwd=REPO_ROOT,
        env=cp_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_migrate_create_token_and_serve(tmp_path: Path, db_url: str):
    port = _free_port()
    cfg = tmp_path / "cp.toml"
    cfg.write_text(
        f'[server]\nport = {port}\ndatabase_url = "{db_url}"\nstate_dir = "{tmp_path}/state"\nlog_format = "json"\n'
    )
    r = _run("--config", str(cfg), "migrate")
    assert r.returncode == 0, r.stderr
    r = _run("--config", str(cfg), "create-token", "--owner", "root", "--admin")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("berth_") and len(token) > 40
    proc = start_controlplane_process(cfg, port, tmp_path / "cp.log")
    try:
        with httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.post("/api/v1/tokens", json={"owner": "alice"})
            assert r.status_code == 201
            assert c.get("/api/v1/tokens").status_code == 200
            assert c.get("/api/sessions", headers={"Authorization": "Bearer nope"}).status_code == 401
            assert c.get("/health", headers={"X-Request-ID": "rid-77"}).status_code == 200
    finally:
        code = proc.stop()
    assert code == 0, proc.log_text()[-2000:]
    assert '"request_id": "rid-77"' in proc.log_text() or "rid-77" in proc.log_text()


def test_sigterm_ends_open_sse_streams_and_exits_0(tmp_path: Path, db_url: str):
    port = _free_port()
    cfg = tmp_path / "cp.toml"
    cfg.write_text(f'[server]\nport = {port}\ndatabase_url = "{db_url}"\nstate_dir = "{tmp_path}/state"\n')
    token = _run("--config", str(cfg), "create-token", "--owner", "root").stdout.strip()
    proc = start_controlplane_process(cfg, port, tmp_path / "cp.log")
    lines: list[str] = []
    ended = threading.Event()
    try:
        with httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            sid = c.post("/api/sessions", json={"agent_id": "CLAUDE_CODE"}).json()["id"]
            connected = threading.Event()

            def read() -> None:
                with c.stream("GET", f"/api/sessions/{sid}/events") as resp:
                    for line in resp.iter_lines():
                        lines.append(line)
                        connected.set()
                ended.set()

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            assert connected.wait(30), proc.log_text()[-2000:]
            proc.popen.send_signal(signal.SIGTERM)
            reader.join(60)
    finally:
        code = proc.stop()
    assert ended.is_set(), "the SSE stream did not end at shutdown"
    assert lines[0] == ": connected"
    assert code == 0, proc.log_text()[-2000:]


def test_cli_rejects_bad_config_and_empty_owner(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nlog_format = "xml"\n')
    r = _run("--config", str(bad), "migrate")
    assert r.returncode == 2 and "log_format" in r.stderr
    r = _run("--config", str(tmp_path / "missing.toml"), "migrate")
    assert r.returncode == 2 and "bad config" in r.stderr
    good = tmp_path / "good.toml"
    good.write_text(f'[server]\nstate_dir = "{tmp_path}/s"\n')
    r = _run("--config", str(good), "create-token", "--owner", "  ")
    assert r.returncode == 2 and "owner" in r.stderr


def test_config_defaults_and_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = from_dict({"server": {"state_dir": str(tmp_path)}})
    assert cfg.host == "127.0.0.1" and cfg.port == 8080
    assert cfg.database_url == f"sqlite+aiosqlite:///{tmp_path}/controlplane.sqlite3"
    monkeypatch.setenv("BERTH_DATABASE_URL", "postgresql+asyncpg://x/y")
    monkeypatch.setenv("BERTH_PORT", "9000")
    monkeypatch.setenv("BERTH_HOST", "")  # empty: overrides nothing
    cfg = from_dict({"server": {"port": 1, "host": "0.0.0.0"}})
    assert cfg.database_url == "postgresql+asyncpg://x/y" and cfg.port == 9000 and cfg.host == "0.0.0.0"
    monkeypatch.setenv("BERTH_PORT", "eighty")
    with pytest.raises(ValueError, match="BERTH_PORT: .*integer.*'eighty'"):
        from_dict({})
    monkeypatch.delenv("BERTH_PORT")
    monkeypatch.delenv("BERTH_DATABASE_URL")
    with pytest.raises(ValueError, match="unknown key"):
        from_dict({"server": {"prot": 1}})
    with pytest.raises(ValueError, match="max_body_bytes"):
        from_dict({"server": {"max_body_bytes": 5}})
    # A wrong type is an error naming the key: "false" is not false.
    with pytest.raises(ValueError, match="server.metrics_public"):
        from_dict({"server": {"metrics_public": "false"}})
    with pytest.raises(ValueError, match="server.port"):
        from_dict({"server": {"port": "8080"}})
    with pytest.raises(ValueError, match="servr: unknown key"):
        from_dict({"servr": {}})


def test_config_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "controlplane.toml"
    bad.write_text("[server]\nprot = 1\n")
    r = _run("--config", str(bad), "migrate")
    assert r.returncode == 2 and f"{bad}: server.prot: unknown key" in r.stderr, r.stderr
    bad.write_text("[server\n")
    r = _run("--config", str(bad), "migrate")
    assert r.returncode == 2 and f"{bad}: " in r.stderr, r.stderr
