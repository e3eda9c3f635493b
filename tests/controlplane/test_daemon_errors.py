"""Daemon failures as the web app sees them (driven by the in-process daemon double): unreachable → 502,
too slow → 504 within the deadline, rejected → 4xx naming the field with nothing written."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from tests.controlplane.helpers import poll


async def _setup(cp, address: str):
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    return alice, m, ws


async def test_daemon_down_answers_502_error_and_marks_session_failed(cp, tmp_path):
    alice, _m, ws = await _setup(cp, f"unix:{tmp_path}/no-daemon.sock")
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hello"})
    assert r.status_code == 502
    body = r.json()
    assert body["status"] == "error"
    assert "unreachable" in body["payload"]["error"]
    sid = body["payload"]["agent_session_id"]
    s = (await alice.get(f"/api/sessions/{sid}")).json()
    assert s["status"] == "failed"
    assert "unreachable" in s["last_error"]
    metrics = (await alice.get("/metrics")).text
    assert 'berth_cp_daemon_rpc_errors_total{code="UNAVAILABLE",method="LaunchSession"} 1.0' in metrics
    assert 'berth_cp_launch_seconds_count{outcome="error"} 1.0' in metrics
    assert 'berth_cp_sessions{status="failed"} 1.0' in metrics


async def test_slow_daemon_answers_504_within_deadline_and_marks_session_failed(controlplane_factory, fake_daemon):
    fake, address = fake_daemon
    fake.launch_delay = 30
    cp = await controlplane_factory(daemon_deadline_seconds=1.0)
    alice, _m, ws = await _setup(cp, address)
    started = time.monotonic()
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hello"})
    elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert r.json()["status"] == "error"
    assert "deadline" in r.json()["payload"]["error"]
    assert elapsed < 20  # bounded by the deadline, not by the daemon's 30 s
    sid = r.json()["payload"]["agent_session_id"]
    assert (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "failed"


async def test_daemon_invalid_argument_is_422_naming_field_and_writes_nothing(cp, fake_daemon):
    fake, address = fake_daemon
    fake.fail["LaunchSession"] = (grpc.StatusCode.INVALID_ARGUMENT, "repository: is not a git repository")
    alice, _m, ws = await _setup(cp, address)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hello"})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == "error"
    assert body["payload"]["field"] == "repository"
    assert "agent_session_id" not in body["payload"]
    listing = (await alice.get("/api/sessions")).json()
    assert listing["sessions"] == [] and listing["total"] == 0


async def test_daemon_not_found_on_pause_is_404_and_status_unchanged(cp, fake_daemon):
    fake, address = fake_daemon
    alice, _m, ws = await _setup(cp, address)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hi"})
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]
    fake.fail["PauseSession"] = (grpc.StatusCode.NOT_FOUND, "no such session")
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "paused"})
    assert r.status_code == 404
    assert (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "active"


async def test_daemon_failed_precondition_on_message_is_409_with_the_daemons_words_and_code(cp, fake_daemon):
    fake, address = fake_daemon
    alice, _m, ws = await _setup(cp, address)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hi"})
    sid = r.json()["payload"]["agent_session_id"]
    fake.fail["SendMessage"] = (grpc.StatusCode.FAILED_PRECONDITION, "session is busy stopping")
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "more"})
    assert r.status_code == 409
    # Mapped in one place, the app's handler: the daemon's words, and its status code by name.
    body = r.json()
    assert body.keys() == {"detail", "code", "status", "payload"} and body["code"] == "FAILED_PRECONDITION"
    assert "stopping" in body["detail"] and body["status"] == "error" and body["payload"]["error"] == body["detail"]


async def test_a_daemon_older_than_a_call_is_409_asking_for_an_upgrade_and_delete_still_works(cp, fake_daemon):
    fake, address = fake_daemon
    alice, _m, ws = await _setup(cp, address)
    fake.fail["ListWorktrees"] = (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    r = await alice.get(f"/api/v1/workspaces/{ws['id']}/worktrees")
    assert r.status_code == 409 and "upgrade" in r.json()["detail"], r.text
    # The double has no ForgetSession (a daemon from before it): deleting a session still succeeds.
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hi"})
    sid = r.json()["payload"]["agent_session_id"]
    assert (await alice.delete(f"/api/sessions/{sid}")).status_code == 204
    assert (await alice.get(f"/api/sessions/{sid}")).status_code == 404


async def test_daemon_down_on_message_is_502(cp, fake_daemon, tmp_path):
    _fake, address = fake_daemon
    alice, m, ws = await _setup(cp, address)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hi"})
    sid = r.json()["payload"]["agent_session_id"]
    r = await cp.admin.patch(f"/api/v1/machines/{m['id']}", json={"address": f"unix:{tmp_path}/gone.sock"})
    assert r.status_code == 200
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "more"})
    assert r.status_code == 502
    assert "unreachable" in r.json()["detail"]


async def test_launch_calls_daemon_with_workspace_repository_settings_and_ids(cp, fake_daemon):
    fake, address = fake_daemon
    alice, _m, ws = await _setup(cp, address)
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={
            "initial_prompt": "build it",
            "worktree_name": "feature/x",
            "metadata": {"ticket": 7},
            "session_settings": {
                "code": {"default_provider": "codex", "providers": {"codex": {"model": "gpt-x", "thinking": "low"}}}
            },
        },
    )
    assert r.status_code == 200, r.text
    payload = r.json()["payload"]
    assert r.json()["status"] == "ok"
    assert payload["worktree_path"].endswith("feature/x")
    assert {"agent_session_id", "user_session_id", "workspace_id", "machine_id"} <= set(payload)
    (req,) = fake.called("LaunchSession")
    assert req.repository == "/srv/repo"
    assert req.worktree_name == "feature/x"
    assert req.agent_session_id == payload["agent_session_id"]
    assert req.session_settings.code.default_provider == "codex"
    assert req.session_settings.code.providers.codex.thinking == "low"
    assert req.metadata["ticket"] == 7
    s = (await alice.get(f"/api/sessions/{payload['agent_session_id']}")).json()
    assert s["agent_id"] == "CODEX"
    assert s["data"]["workdir"] == payload["worktree_path"]
    assert s["data"]["model"] == "fake-model"


async def test_a_client_gone_during_a_slow_launch_leaves_the_session_as_the_daemon_has_it(
    controlplane_factory, fake_daemon
):
    fake, address = fake_daemon
    fake.launch_delay = 3
    cp = await controlplane_factory(daemon_deadline_seconds=10.0)
    alice, _m, ws = await _setup(cp, address)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "x"}), 0.5)

    async def settled():
        sessions = (await alice.get("/api/sessions")).json()["sessions"]
        return sessions if sessions and sessions[0]["status"] in ("active", "failed") else None

    (session,) = await poll(settled, timeout=30, what="the launch to finish or fail")
    # Never "active" unless the daemon really runs it; never left "created".
    assert session["status"] == ("active" if session["id"] in fake.sessions else "failed"), session


async def test_error_ack_with_a_field_is_422_and_writes_nothing(cp, fake_daemon):
    fake, address = fake_daemon
    fake.launch_ack_error = {"error": "worktree_name: branch exists elsewhere", "field": "worktree_name"}
    alice, _m, ws = await _setup(cp, address)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"worktree_name": "taken"})
    assert r.status_code == 422
    assert r.json()["status"] == "error" and r.json()["payload"]["field"] == "worktree_name"
    assert (await alice.get("/api/sessions")).json()["total"] == 0


async def test_error_ack_without_a_field_is_502_and_marks_the_session_failed(cp, fake_daemon):
    fake, address = fake_daemon
    fake.launch_ack_error = {"error": "agent binary crashed at start"}
    alice, _m, ws = await _setup(cp, address)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "x"})
    assert r.status_code == 502
    assert r.json()["payload"]["error"] == "agent binary crashed at start"
    s = (await alice.get(f"/api/sessions/{r.json()['payload']['agent_session_id']}")).json()
    assert s["status"] == "failed" and s["last_error"] == "agent binary crashed at start"


def test_the_daemon_double_implements_every_rpc_of_the_daemon_service():
    # A method left to the generated base answers UNIMPLEMENTED from a sync handler whose logged
    # traceback keeps the double's server (and grpc.aio's fds) alive past its test module.
    from berth.daemon.v1 import daemon_pb2

    from tests.controlplane.fake_daemon import FakeDaemon

    methods = daemon_pb2.DESCRIPTOR.services_by_name["DaemonService"].methods_by_name
    missing = [name for name in methods if name not in vars(FakeDaemon)]
    assert missing == []
