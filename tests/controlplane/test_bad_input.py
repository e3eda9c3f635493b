"""Bad input: 422 naming the field, 413 for big bodies, 404 for unknown ids, 409 for invalid transitions,
and nothing written when a request fails."""

from __future__ import annotations

import pytest


@pytest.fixture
async def alice_ws(cp):
    alice = await cp.owner("alice")
    m = await cp.machine("unix:/tmp/none.sock", "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    return alice, ws


def _loc(r) -> list:
    return [tuple(e["loc"]) for e in r.json()["detail"]]


async def _nothing_written(alice) -> None:
    listing = (await alice.get("/api/sessions")).json()
    assert listing["total"] == 0 and listing["sessions"] == []


async def test_launch_validation_errors_name_the_field_and_write_nothing(cp, alice_ws):
    alice, ws = alice_ws
    url = f"/api/v1/workspaces/{ws['id']}/sessions"
    cases = [
        ({"worktree_name": "../escape"}, ("body", "worktree_name")),
        ({"worktree_name": "-bad"}, ("body", "worktree_name")),
        ({"bogus": 1}, ("body", "bogus")),
        ({"metadata": "not an object"}, ("body", "metadata")),
        (
            {"session_settings": {"code": {"default_provider": "gemini"}}},
            ("body", "session_settings", "code", "default_provider"),
        ),
        (
            {"session_settings": {"code": {"providers": {"codex": {"thinking": "extreme"}}}}},
            ("body", "session_settings", "code", "providers", "codex", "thinking"),
        ),
        ({"initial_prompt": 5}, ("body", "initial_prompt")),
    ]
    for body, loc in cases:
        r = await alice.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert loc in _loc(r), (body, r.json())
    r = await alice.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    await _nothing_written(alice)


async def test_launch_without_any_machine_is_422_machine_id(cp):
    alice = await cp.owner("alice")
    ws = await cp.workspace("/srv/repo", "alice", None)
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "x"})
    assert r.status_code == 422 and ("body", "machine_id") in _loc(r)
    await _nothing_written(alice)


async def test_launch_unknown_ids_are_404_and_write_nothing(cp, alice_ws):
    alice, ws = alice_ws
    assert (await alice.post("/api/v1/workspaces/ws-nope/sessions", json={})).status_code == 404
    url = f"/api/v1/workspaces/{ws['id']}/sessions"
    for body in (
        {"machine_id": "machine-nope"},
        {"user_session_id": "usess-nope"},
        {"agent_session_id": "session-nope"},
    ):
        r = await alice.post(url, json=body)
        assert r.status_code == 404, (body, r.text)
    await _nothing_written(alice)


async def test_session_api_validation_errors(cp, alice_ws):
    alice, _ws = alice_ws
    r = await alice.post("/api/sessions", json={"agent_id": "GPT"})
    assert r.status_code == 422 and ("body", "agent_id") in _loc(r)
    r = await alice.post("/api/sessions", json={"task_id": "t"})
    assert r.status_code == 422 and ("body", "agent_id") in _loc(r)
    r = await alice.get("/api/sessions", params={"status": "sleeping"})
    assert r.status_code == 422 and ("query", "status") in _loc(r)
    r = await alice.get("/api/sessions", params={"agent_id": "X"})
    assert r.status_code == 422 and ("query", "agent_id") in _loc(r)
    r = await alice.get("/api/sessions", params={"limit": 0})
    assert r.status_code == 422 and ("query", "limit") in _loc(r)
    await _nothing_written(alice)
    r = await alice.post("/api/sessions", json={"agent_id": "CLAUDE_CODE", "task_id": "t1"})
    assert r.status_code == 201
    sid = r.json()["id"]
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "sleeping"})
    assert r.status_code == 422 and ("body", "status") in _loc(r)
    r = await alice.patch(f"/api/sessions/{sid}", json={"data": [1, 2]})
    assert r.status_code == 422 and ("body", "data") in _loc(r)
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": ""})
    assert r.status_code == 422 and ("body", "content") in _loc(r)
    r = await alice.post(f"/api/sessions/{sid}/message", json={})
    assert r.status_code == 422 and ("body", "content") in _loc(r)
    r = await alice.get(f"/api/sessions/{sid}/events", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422


async def test_invalid_status_transitions_are_409_and_change_nothing(cp, alice_ws):
    alice, _ws = alice_ws
    sid = (await alice.post("/api/sessions", json={"agent_id": "CODEX", "prompt": None})).json()["id"]
    for target in ("paused", "failed"):
        r = await alice.patch(f"/api/sessions/{sid}", json={"status": target, "data": {"x": 1}, "prompt": "p"})
        assert r.status_code == 409, r.text
    s = (await alice.get(f"/api/sessions/{sid}")).json()
    assert s["status"] == "created" and s["data"] == {} and s["prompt"] is None
    # created → completed is allowed (never launched: nothing to stop); completed → active is not.
    assert (await alice.patch(f"/api/sessions/{sid}", json={"status": "completed"})).status_code == 200
    assert (await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})).status_code == 409


async def test_message_to_a_session_that_is_not_running_is_409(cp, alice_ws):
    alice, _ws = alice_ws
    sid = (await alice.post("/api/sessions", json={"agent_id": "CLAUDE_CODE"})).json()["id"]
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "hello?"})
    assert r.status_code == 409
    assert "not running" in r.json()["detail"]


async def test_unknown_session_ids_are_404(cp, alice_ws):
    alice, _ = alice_ws
    for method, path, body in [
        ("GET", "/api/sessions/session-nope", None),
        ("PATCH", "/api/sessions/session-nope", {"status": "paused"}),
        ("DELETE", "/api/sessions/session-nope", None),
        ("POST", "/api/sessions/session-nope/message", {"content": "x"}),
        ("GET", "/api/sessions/session-nope/messages", None),
        ("GET", "/api/sessions/session-nope/events", None),
    ]:
        r = await alice.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)


async def test_bodies_over_the_limit_are_413_and_write_nothing(controlplane_factory):
    cp = await controlplane_factory(max_body_bytes=64 * 1024)
    alice = await cp.owner("alice")
    ws = await cp.workspace("/srv/repo", "alice", None)
    big = {
        "workspace_id": ws["id"],
        "claude_session_id": "0c100000-0000-4000-8000-000000000001",
        "messages": [{"role": "user", "content": {"type": "text", "text": "x" * 1000}}] * 100,
    }
    r = await alice.post("/api/v1/user-sessions/import-claude-session", json=big)
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]

    async def chunks():
        for _ in range(100):
            yield b"x" * 1024

    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    await _nothing_written(alice)


async def test_admin_validation_errors_name_the_field(cp):
    r = await cp.admin.post("/api/v1/machines", json={"name": "m", "address": "not an address"})
    assert r.status_code == 422 and ("body", "address") in _loc(r)
    r = await cp.admin.post("/api/v1/machines", json={"address": "unix:/tmp/a.sock"})
    assert r.status_code == 422 and ("body", "name") in _loc(r)
    r = await cp.admin.post(
        "/api/v1/workspaces", json={"name": "w", "repository": "/r", "default_machine_id": "machine-nope"}
    )
    assert r.status_code == 422 and ("body", "default_machine_id") in _loc(r)
    r = await cp.admin.post("/api/v1/tokens", json={"owner": ""})
    assert r.status_code == 422 and ("body", "owner") in _loc(r)
    assert (await cp.admin.get("/api/v1/machines")).json() == []
    assert (await cp.admin.get("/api/v1/workspaces")).json() == []
