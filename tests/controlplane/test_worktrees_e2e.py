"""A workspace's worktrees through REST with the real daemon and claude: deleting a session makes the
daemon forget it and keeps its worktree, which GET .../worktrees lists as the deleted session's and
POST .../worktrees/prune removes; ids are resolved among the caller's own objects."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from tests.daemon.harness import settings_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def setup(cp, daemon_factory, claude_provider, git_repo):
    d = daemon_factory(config={"providers": {"claude_code": claude_provider}})
    alice = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    return d, alice, m, ws


async def _launch(client, ws: dict, name: str) -> tuple[str, Path]:
    r = await client.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"worktree_name": name})
    assert r.status_code == 200, r.text
    return r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])


async def test_a_deleted_sessions_worktree_is_listed_then_pruned_and_the_daemon_forgets_it(setup, git_repo):
    d, alice, _m, ws = setup
    sid, path = await _launch(alice, ws, "gone")
    kept_sid, kept_path = await _launch(alice, ws, "kept")
    assert (await alice.delete(f"/api/sessions/{sid}")).status_code == 204

    with pytest.raises(grpc.RpcError) as err:
        d.stub().GetSession(pb.SessionRequest(agent_session_id=sid), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert path.is_dir()
    r = await alice.get(f"/api/v1/workspaces/{ws['id']}/worktrees")
    assert r.status_code == 200, r.text
    listed = {w["path"]: w for w in r.json()["worktrees"]}
    assert r.json()["machine_id"] == ws["default_machine_id"]
    assert listed[str(path)] == {
        "path": str(path),
        "branch": "gone",
        "dirty": False,
        "agent_session_id": sid,
        "session_status": None,
        "session_deleted": True,
    }
    assert listed[str(kept_path)]["session_status"] == "active" and not listed[str(kept_path)]["session_deleted"]

    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/worktrees/prune", json={})
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == [
        {"path": str(path), "branch": "gone", "agent_session_id": sid, "branch_deleted": True}
    ]
    assert r.json()["kept"] == [] and not path.exists() and kept_path.is_dir()
    assert (await alice.delete(f"/api/sessions/{kept_sid}")).status_code == 204


async def test_prune_removes_and_forgets_a_session_the_control_plane_never_had(setup, git_repo):
    d, alice, _m, ws = setup
    stub = d.stub()
    ack = stub.LaunchSession(
        pb.LaunchSessionRequest(
            repository=str(git_repo), owner="alice", worktree_name="stray", session_settings=settings_for("claude_code")
        ),
        timeout=30,
    )
    sid = ack.session.agent_session_id
    stub.StopSession(pb.StopSessionRequest(agent_session_id=sid), timeout=60)

    listed = (await alice.get(f"/api/v1/workspaces/{ws['id']}/worktrees")).json()["worktrees"]
    assert [(w["agent_session_id"], w["session_status"], w["session_deleted"]) for w in listed] == [
        (sid, "completed", True)
    ]
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/worktrees/prune", json={"force": False})
    assert [w["agent_session_id"] for w in r.json()["removed"]] == [sid]
    with pytest.raises(grpc.RpcError) as err:
        stub.GetSession(pb.SessionRequest(agent_session_id=sid), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_worktree_ids_are_the_callers_own_and_a_missing_machine_is_named(cp, setup, git_repo):
    _d, alice, m, ws = setup
    bob = await cp.owner("bob")
    bob_ws = await cp.workspace(str(git_repo), "bob", None)
    for client, url in (
        (bob, f"/api/v1/workspaces/{ws['id']}/worktrees"),
        (bob, f"/api/v1/workspaces/{bob_ws['id']}/worktrees?machine_id={m['id']}"),
        (alice, "/api/v1/workspaces/ws_missing/worktrees"),
    ):
        assert (await client.get(url)).status_code == 404, url
    r = await bob.post(f"/api/v1/workspaces/{bob_ws['id']}/worktrees/prune", json={"machine_id": m["id"]})
    assert r.status_code == 404
    r = await bob.get(f"/api/v1/workspaces/{bob_ws['id']}/worktrees")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "machine_id"]
    r = await bob.post(f"/api/v1/workspaces/{bob_ws['id']}/worktrees/prune", json={"forse": True})
    assert r.status_code == 422 and "forse" in r.text
