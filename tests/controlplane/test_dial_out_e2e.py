"""A machine behind NAT, through REST: the admin creates it with `dial_out: true`, `berth-daemon enroll`
trades its one-time token for a credential and writes the daemon's config, and the daemon — whose only
listener is a unix socket the control plane is never told about — dials the control plane's tunnel
listener (TLS). Launch, follow-ups, SSE, approvals, pause/resume and the diff then work as over a direct
channel, with the real claude; a control-plane restart mid-turn loses and repeats no event; a revoked
machine stays out; an offline one answers 503 at once; bad enrollment tokens get clear 401s."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controlplane.config import TunnelConfig
from daemon.config import load_config as load_daemon_config
from tests.controlplane.helpers import poll, read_sse, wait_messages
from tests.ops.support import child_env, free_port, run_install, scripts_dir
from tests.support.daemon_proc import daemon_env
from tests.support.tls import make_self_signed

pytestmark = pytest.mark.timeout(300)

COMMAND = 'python3 -c \'open("ran.txt", "w").write("approved")\''


def _tunnel(tmp_path: Path, **extra: Any) -> tuple[TunnelConfig, Path]:
    """A TLS tunnel listener on a fixed free port (a restarted control plane listens there again)."""
    cert, key = make_self_signed(tmp_path / "cp-tls")
    return TunnelConfig(listen=f"127.0.0.1:{free_port()}", tls_cert=cert, tls_key=key, **extra), cert


def _enroll(url: str, token: str, ca: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """`python -m daemon enroll …`, the way an operator runs it on the machine."""
    args = [sys.executable, "-m", "daemon", "enroll", "--url", url, "--token", token, "--ca", str(ca)]
    return subprocess.run(
        [*args, "--config", str(config)], capture_output=True, text=True, timeout=60, env=daemon_env(), check=False
    )


async def _dial_out_machine(cp, owner: str) -> dict:
    r = await cp.admin.post("/api/v1/machines", json={"name": f"laptop-{owner}", "dial_out": True, "owner": owner})
    assert r.status_code == 201, r.text
    return r.json()


async def _machine(cp, machine_id: str) -> dict:
    r = await cp.admin.get(f"/api/v1/machines/{machine_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _texts(ms: list[dict]) -> str:
    return "\n".join(m["content"].get("text") or "" for m in ms)


def _reply(text: str, *, said: str | None = None):
    """The turn asked with `text` has ended, with the scripted model's answer (`ok: text` unless `said`)."""
    return lambda ms: (said or f"ok: {text}") in _texts(ms) and ms[-1]["metadata"].get("turn_complete")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_enrolled_machine_behind_nat_serves_the_whole_session_api_through_its_tunnel(
    controlplane_factory, daemon_factory, claude_provider, git_repo, model_server, tmp_path
):
    tunnel, ca = _tunnel(tmp_path)
    cp = await controlplane_factory(tunnel=tunnel)
    alice = await cp.owner("alice")
    alice_token = alice.headers["Authorization"].removeprefix("Bearer ")
    m = await _dial_out_machine(cp, "alice")
    assert m["dial_out"] is True and m["enrolled"] is False and m["online"] is False and m["last_seen"] is None
    ws = await cp.workspace(str(git_repo), "alice", m["id"])

    # Not enrolled yet: offline, said at once (never a hang), and nothing is launched.
    r = await alice.get(f"/api/v1/machines/{m['id']}/info")
    assert r.status_code == 503 and "is offline since" in r.json()["payload"]["error"], r.text
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "too early"})
    assert r.status_code == 503 and r.json()["status"] == "error", r.text
    assert f"machine {m['id']} is offline since" in r.json()["payload"]["error"]

    config = tmp_path / "machine" / "daemon.toml"
    done = await asyncio.to_thread(_enroll, cp.url, m["enrollment_token"], ca, config)
    assert done.returncode == 0, done.stderr
    assert m["id"] in done.stdout
    credential = config.parent / f"{config.stem}.credential"
    for private in (config, credential):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    dial_out = tomllib.loads(config.read_text())["dial_out"]
    assert dial_out["address"] == tunnel.listen and dial_out["credential_file"] == str(credential)
    # The token was for one use.
    again = await asyncio.to_thread(_enroll, cp.url, m["enrollment_token"], ca, tmp_path / "other" / "daemon.toml")
    assert again.returncode == 1 and "unknown or already used" in again.stderr, again.stderr
    # The credential is the machine's: no answer shows it.
    shown = await _machine(cp, m["id"])
    assert shown["enrolled"] is True and credential.read_text().strip() not in str(shown)

    d = daemon_factory(config={"dial_out": dial_out, "providers": {"claude_code": claude_provider}})
    online = await poll(lambda: _online(cp, m["id"]), timeout=30, what="the machine's tunnel to open")
    assert online["connected_since"] and online["last_seen"]
    # While the tunnel is open the machine is seen now, not only when it connected.
    await poll(lambda: _seen_after_connecting(cp, m["id"]), timeout=30, what="last_seen to move past connected_since")
    info = await alice.get(f"/api/v1/machines/{m['id']}/info")
    assert info.status_code == 200 and info.json()["daemon_version"], info.text

    # Launch, a follow-up, the live SSE stream.
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={"initial_prompt": "through the tunnel", "worktree_name": "tunnel-e2e"},
    )
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    sid, worktree = r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])
    msgs = await wait_messages(alice, sid, _reply("through the tunnel"), timeout=90, what="the first turn")
    last = msgs[-1]["seq"]

    async def follow_up() -> None:
        r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "and back"})
        assert r.status_code == 200 and r.json()["status"] == "sent", r.text

    live = await read_sse(
        alice,
        f"/api/sessions/{sid}/events",
        0,
        headers={"Last-Event-ID": str(last)},
        on_open=follow_up,
        timeout=90,
        until=lambda evs: any("ok: and back" in (e["content"].get("text") or "") for _, e in evs),
    )
    assert [seq for seq, _ in live] == list(range(last + 1, last + 1 + len(live)))
    await wait_messages(alice, sid, _reply("and back"), timeout=90, what="the follow-up's turn")

    # An approval: claude asks for a shell command; the web app's decision runs it.
    model_server.script("run the check", command=COMMAND, text="the check ran")
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "please run the check"})
    assert r.status_code == 200, r.text
    pending = await poll(lambda: _pending(alice, sid), timeout=90, what="a pending approval")
    r = await alice.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "allow"})
    assert r.status_code == 200 and r.json()["status"] == "allowed", r.text
    await wait_messages(
        alice, sid, _reply("please run the check", said="the check ran"), timeout=120, what="the approved turn"
    )
    assert (worktree / "ran.txt").read_text() == "approved"

    # The diff shows what the approved command wrote.
    r = await alice.get(f"/api/sessions/{sid}/diff")
    assert r.status_code == 200, r.text
    assert "ran.txt" in [f["path"] for f in r.json()["files"]]

    # Pause and resume the same conversation.
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "paused"})
    assert r.status_code == 200 and r.json()["status"] == "paused", r.text
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active", r.text

    # The control plane restarts mid-turn: the daemon dials again, ingest goes on from the last stored
    # seq, and no event is lost or stored twice.
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "across the restart"})
    assert r.status_code == 200, r.text
    await cp.stop()
    cp = await controlplane_factory(tunnel=tunnel)
    alice = cp.client(alice_token)
    await poll(lambda: _online(cp, m["id"]), timeout=60, what="the tunnel to open again")
    msgs = await wait_messages(alice, sid, _reply("across the restart"), timeout=120, what="the turn across")
    seqs = [x["seq"] for x in msgs]
    assert seqs == list(range(1, len(seqs) + 1))

    # Revoked: the tunnel closes, the daemon's next attempts are refused, calls answer 503.
    r = await cp.admin.post(f"/api/v1/machines/{m['id']}/revoke")
    assert r.status_code == 200 and r.json()["enrolled"] is False, r.text
    await poll(lambda: _offline(cp, m["id"]), timeout=30, what="the tunnel to close")
    await poll(lambda: _refusals(d.log_text()) >= 2 or None, timeout=60, what="the daemon's retries to be refused")
    assert (await _machine(cp, m["id"]))["online"] is False
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "after revoke"})
    assert r.status_code == 503 and "is offline since" in r.json()["payload"]["error"], r.text


async def _online(cp, machine_id: str) -> dict | None:
    m = await _machine(cp, machine_id)
    return m if m["online"] else None


async def _seen_after_connecting(cp, machine_id: str) -> bool:
    m = await _machine(cp, machine_id)
    return datetime.fromisoformat(m["last_seen"]) > datetime.fromisoformat(m["connected_since"])


async def _offline(cp, machine_id: str) -> dict | None:
    m = await _machine(cp, machine_id)
    return m if not m["online"] else None


async def _pending(client, sid: str) -> dict | None:
    r = await client.get(f"/api/sessions/{sid}/approvals", params={"status": "pending"})
    assert r.status_code == 200, r.text
    return r.json()["approvals"][0] if r.json()["approvals"] else None


def _refusals(log: str) -> int:
    return sum(1 for line in log.splitlines() if "tunnel to" in line and "failed" in line and "UNAUTHENTICATED" in line)


async def test_enrollment_tokens_are_single_use_expire_and_are_refused_clearly(controlplane_factory, tmp_path):
    tunnel, _ca = _tunnel(tmp_path, enrollment_ttl_seconds=1.0)
    cp = await controlplane_factory(tunnel=tunnel)
    public = cp.client(None)

    r = await public.post("/api/v1/enroll", json={"token": "enroll-not-a-real-one"})
    assert r.status_code == 401 and "unknown or already used" in r.json()["detail"], r.text
    r = await public.post("/api/v1/enroll", json={})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "token"], r.text

    m = await _dial_out_machine(cp, "bob")
    r = await cp.admin.post(f"/api/v1/machines/{m['id']}/enrollment")
    assert r.status_code == 201 and r.json()["expires_at"], r.text
    stale = m["enrollment_token"]  # replaced by the new enrollment just made
    r = await public.post("/api/v1/enroll", json={"token": stale})
    assert r.status_code == 401 and "unknown or already used" in r.json()["detail"], r.text

    fresh = (await cp.admin.post(f"/api/v1/machines/{m['id']}/enrollment")).json()["enrollment_token"]
    r = await public.post("/api/v1/enroll", json={"token": fresh})
    assert r.status_code == 200, r.text
    enrolled = r.json()
    assert enrolled["machine_id"] == m["id"] and enrolled["tunnel_address"] == tunnel.listen
    assert enrolled["credential"].startswith("machine-")
    r = await public.post("/api/v1/enroll", json={"token": fresh})
    assert r.status_code == 401 and "unknown or already used" in r.json()["detail"], r.text

    # Expired: refused, with the way to a new one (as often as it is tried).
    late = (await cp.admin.post(f"/api/v1/machines/{m['id']}/enrollment")).json()
    expires = datetime.fromisoformat(late["expires_at"])
    await poll(lambda: _past(expires), timeout=10, what="the enrollment token to expire")
    r = await public.post("/api/v1/enroll", json={"token": late["enrollment_token"]})
    assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
    assert f"/api/v1/machines/{m['id']}/enrollment" in r.json()["detail"]
    r = await public.post("/api/v1/enroll", json={"token": late["enrollment_token"]})
    assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
    # The expired attempt did not cost the machine the credential it had.
    assert (await _machine(cp, m["id"]))["enrolled"] is True


async def _past(moment: datetime) -> bool | None:
    return True if datetime.now(moment.tzinfo) > moment else None


async def test_dial_out_machines_refuse_addresses_and_plain_machines_refuse_enrollment(controlplane_factory, tmp_path):
    tunnel, _ca = _tunnel(tmp_path)
    cp = await controlplane_factory(tunnel=tunnel)
    before = (await cp.admin.get("/api/v1/machines")).json()
    r = await cp.admin.post("/api/v1/machines", json={"name": "x", "dial_out": True, "address": "box:7443"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "address"], r.text
    r = await cp.admin.post("/api/v1/machines", json={"name": "x"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "address"], r.text
    assert (await cp.admin.get("/api/v1/machines")).json() == before  # nothing was written

    m = await _dial_out_machine(cp, "carol")
    r = await cp.admin.patch(f"/api/v1/machines/{m['id']}", json={"address": "box:7443"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "address"], r.text
    plain = (await cp.admin.post("/api/v1/machines", json={"name": "p", "address": "unix:/nowhere.sock"})).json()
    for action in ("enrollment", "revoke"):
        r = await cp.admin.post(f"/api/v1/machines/{plain['id']}/{action}")
        assert r.status_code == 409 and "does not dial out" in r.json()["detail"], r.text
        r = await cp.admin.post(f"/api/v1/machines/machine-unknown/{action}")
        assert r.status_code == 404, r.text
    # An owner cannot make enrollment tokens.
    carol = await cp.owner("carol")
    r = await carol.post(f"/api/v1/machines/{m['id']}/enrollment")
    assert r.status_code == 403, r.text
    # Deleting the machine forgets its enrollment token.
    assert (await cp.admin.delete(f"/api/v1/machines/{m['id']}")).status_code == 204
    r = await cp.client(None).post("/api/v1/enroll", json={"token": m["enrollment_token"]})
    assert r.status_code == 401, r.text


async def test_a_control_plane_without_a_tunnel_listener_refuses_dial_out_machines(cp):
    r = await cp.admin.post("/api/v1/machines", json={"name": "laptop", "dial_out": True})
    assert r.status_code == 409 and "[tunnel]" in r.json()["detail"], r.text
    assert (await cp.admin.get("/api/v1/machines")).json() == []
    r = await cp.client(None).post("/api/v1/enroll", json={"token": "enroll-x"})
    assert r.status_code == 409, r.text


def test_enroll_refuses_plain_http_off_loopback_and_names_the_option(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "enroll", "--url", "http://cp.example.com", "--token", "t"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**daemon_env(), "XDG_CONFIG_HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 2 and "--url must use https" in done.stderr
    assert not os.listdir(tmp_path)  # no config, no credential


async def test_the_install_script_enrolls_a_user_daemon_through_the_environment_not_argv(
    controlplane_factory, tmp_path
):
    tunnel, ca = _tunnel(tmp_path)
    cp = await controlplane_factory(tunnel=tunnel)
    m = await _dial_out_machine(cp, "dave")
    config_home = tmp_path / "home" / ".config"
    env = child_env(XDG_CONFIG_HOME=str(config_home), XDG_RUNTIME_DIR="/run/user/4242", HOME=str(tmp_path / "home"))
    common = ("--user", "--bin", str(scripts_dir(tmp_path)), "--enroll", cp.url, m["enrollment_token"], "--ca", str(ca))

    dry = await asyncio.to_thread(run_install, *common, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"enroll --url {cp.url} --config {config_home}/berth/daemon.toml --ca {ca}" in dry.stdout
    assert m["enrollment_token"] not in dry.stdout + dry.stderr
    assert (await _machine(cp, m["id"]))["enrolled"] is False  # a dry run spends no token

    root = tmp_path / "root"
    done = await asyncio.to_thread(run_install, *common, "--root", str(root), env=env)
    assert done.returncode == 0, done.stderr
    assert f"its daemon dials out to {cp.url}" in done.stdout and "berth machine add" not in done.stdout
    assert m["enrollment_token"] not in done.stdout + done.stderr
    config_path = root / str(config_home).lstrip("/") / "berth" / "daemon.toml"
    config = load_daemon_config(config_path)
    assert config.dial_out is not None and config.dial_out.address == tunnel.listen
    assert config.socket_path == Path("/run/user/4242/berth/daemon.sock")  # the local socket stays
    for private in (config_path, config_path.parent / "daemon.credential"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert (await _machine(cp, m["id"]))["enrolled"] is True

    # The token was spent: running it again fails, naming the step, and exits non-zero.
    again = await asyncio.to_thread(run_install, *common, "--root", str(tmp_path / "root2"), env=env)
    assert again.returncode == 2 and "--enroll: enrolling with" in again.stderr, again.stderr


async def test_codex_runs_through_the_tunnel_with_an_approval_a_follow_up_and_the_diff(
    controlplane_factory, daemon_factory, codex_provider, git_repo, model_server, tmp_path
):
    tunnel, ca = _tunnel(tmp_path)
    cp = await controlplane_factory(tunnel=tunnel)
    alice = await cp.owner("alice")
    m = await _dial_out_machine(cp, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    config = tmp_path / "machine" / "daemon.toml"
    done = await asyncio.to_thread(_enroll, cp.url, m["enrollment_token"], ca, config)
    assert done.returncode == 0, done.stderr
    dial_out = tomllib.loads(config.read_text())["dial_out"]
    daemon_factory(config={"dial_out": dial_out, "providers": {"codex": codex_provider}})
    await poll(lambda: _online(cp, m["id"]), timeout=30, what="the machine's tunnel to open")

    model_server.script("run the check", command=COMMAND, text="the check ran")
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={"initial_prompt": "please run the check", "session_settings": {"code": {"default_provider": "codex"}}},
    )
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    sid, worktree = r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])
    pending = await poll(lambda: _pending(alice, sid), timeout=90, what="codex's approval request")
    assert "ran.txt" in pending["input"]["command"]
    r = await alice.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "allow"})
    assert r.status_code == 200 and r.json()["status"] == "allowed", r.text
    await wait_messages(
        alice, sid, _reply("please run the check", said="the check ran"), timeout=120, what="the approved turn"
    )
    assert (worktree / "ran.txt").read_text() == "approved"

    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "codex again"})
    assert r.status_code == 200 and r.json()["status"] == "sent", r.text
    msgs = await wait_messages(alice, sid, _reply("codex again"), timeout=120, what="codex's follow-up turn")
    assert [x["seq"] for x in msgs] == list(range(1, len(msgs) + 1))
    r = await alice.get(f"/api/sessions/{sid}/diff")
    assert r.status_code == 200 and "ran.txt" in [f["path"] for f in r.json()["files"]], r.text
