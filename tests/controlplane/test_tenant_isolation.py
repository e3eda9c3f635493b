"""Tenant isolation: another owner's workspaces, machines and sessions are 404 on every endpoint, and
their lists show nothing of them."""

from __future__ import annotations


async def test_foreign_token_gets_404_on_every_endpoint(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    bob = await cp.owner("bob")
    am = await cp.machine(address, "alice")
    aws = await cp.workspace("/srv/alice", "alice", am["id"])
    bm = await cp.machine(address, "bob")
    bws = await cp.workspace("/srv/bob", "bob", bm["id"])
    r = await alice.post(f"/api/v1/workspaces/{aws['id']}/sessions", json={"initial_prompt": "mine"})
    assert r.status_code == 200, r.text
    a_sid, a_usid = r.json()["payload"]["agent_session_id"], r.json()["payload"]["user_session_id"]
    imp = (await alice.post("/api/v1/user-sessions/import-claude-session",
                            json={"workspace_id": aws["id"], "claude_session_id": "alice-claude", "messages": []})).json()
    launches = len(fake.called("LaunchSession"))

    attempts = [
        ("GET", f"/api/sessions/{a_sid}", None),
        ("PATCH", f"/api/sessions/{a_sid}", {"status": "paused"}),
        ("PATCH", f"/api/sessions/{a_sid}", {"data": {"x": 1}}),
        ("DELETE", f"/api/sessions/{a_sid}", None),
        ("POST", f"/api/sessions/{a_sid}/message", {"content": "hi"}),
        ("POST", f"/api/sessions/{a_sid}/interrupt", None),
        ("DELETE", f"/api/sessions/{a_sid}?remove_worktree=true", None),
        ("GET", f"/api/sessions/{a_sid}/messages", None),
        ("GET", f"/api/sessions/{a_sid}/events", None),
        ("POST", f"/api/v1/workspaces/{aws['id']}/sessions", {"initial_prompt": "x"}),
        ("POST", "/api/v1/user-sessions/import-claude-session",
         {"workspace_id": aws["id"], "claude_session_id": "c", "messages": []}),
        ("GET", f"/api/v1/workspaces/{aws['id']}", None),
        ("GET", f"/api/v1/machines/{am['id']}", None),
        ("GET", f"/api/v1/machines/{am['id']}/info", None),
        # Bob's own workspace, but Alice's machine / user session / agent session:
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"machine_id": am["id"]}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"user_session_id": a_usid}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"agent_session_id": a_sid}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"agent_session_id": imp["agent_session_id"]}),
        ("POST", "/api/sessions", {"agent_id": "CLAUDE_CODE", "workspace_id": aws["id"]}),
        ("POST", "/api/sessions", {"agent_id": "CLAUDE_CODE", "workspace_id": bws["id"], "machine_id": am["id"]}),
    ]
    for method, path, body in attempts:
        r = await bob.request(method, path, json=body)
        assert r.status_code == 404, (method, path, body, r.status_code, r.text)

    assert (await bob.get("/api/sessions")).json()["total"] == 0
    assert [w["id"] for w in (await bob.get("/api/v1/workspaces")).json()] == [bws["id"]]
    assert [m["id"] for m in (await bob.get("/api/v1/machines")).json()] == [bm["id"]]
    # Alice's session is untouched and nothing reached the daemon on Bob's behalf.
    s = (await alice.get(f"/api/sessions/{a_sid}")).json()
    assert s["status"] == "active" and s["data"].get("x") is None
    assert len(fake.called("LaunchSession")) == launches
    assert fake.called("PauseSession") == [] and fake.called("SendMessage") == [] and fake.called("StopSession") == []
    assert fake.called("InterruptSession") == [] and fake.called("RemoveWorktree") == []
    # The resume_session_id of Alice's import does not resolve for Bob either: a fresh session is made.
    r = await bob.post(f"/api/v1/workspaces/{bws['id']}/sessions", json={"resume_session_id": "alice-claude"})
    assert r.status_code == 200
    assert r.json()["payload"]["agent_session_id"] != imp["agent_session_id"]
    assert fake.called("ImportTranscript") == []
