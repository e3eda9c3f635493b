"""Tenant isolation: another owner's workspaces, machines and sessions are 404 on every endpoint, and
their lists show nothing of them."""

from __future__ import annotations

ALICE_CLAUDE = "a11ce000-0000-4000-8000-000000000001"


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
    imp = (
        await alice.post(
            "/api/v1/user-sessions/import-claude-session",
            json={"workspace_id": aws["id"], "claude_session_id": ALICE_CLAUDE, "messages": []},
        )
    ).json()
    a_provider = (await alice.get(f"/api/sessions/{a_sid}")).json()["provider_session_id"]
    assert a_provider
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
        (
            "POST",
            "/api/v1/user-sessions/import-claude-session",
            {"workspace_id": aws["id"], "claude_session_id": "0c000000-0000-4000-8000-000000000001", "messages": []},
        ),
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
        # Resume ids in the body: Alice's Berth session ids and the provider ids recorded for them.
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"resume_session_id": a_sid}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"resume_session_id": imp["agent_session_id"]}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"resume_session_id": a_provider}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"resume_session_id": ALICE_CLAUDE}),
        ("POST", f"/api/v1/workspaces/{bws['id']}/sessions", {"resume_session_id": ALICE_CLAUDE.upper()}),
        (
            "POST",
            f"/api/v1/workspaces/{bws['id']}/sessions",
            {"agent_session_id": a_sid, "resume_session_id": a_provider},
        ),
        # Query ids.
        ("GET", f"/api/sessions/{a_sid}/messages?after_seq=0", None),
        ("GET", f"/api/sessions/{a_sid}/events?after_seq=0", None),
    ]
    for method, path, body in attempts:
        r = await bob.request(method, path, json=body)
        assert r.status_code == 404, (method, path, body, r.status_code, r.text)

    assert (await bob.get("/api/sessions")).json()["total"] == 0
    # Query ids filter only the caller's own rows.
    r = await alice.post(
        "/api/sessions", json={"agent_id": "CODEX", "task_id": "task-alice", "workspace_id": aws["id"]}
    )
    assert r.status_code == 201, r.text
    for params in ({"task_id": "task-alice"}, {"agent_id": "CODEX"}, {"status": "active"}):
        assert (await bob.get("/api/sessions", params=params)).json()["total"] == 0, params
    assert (await alice.get("/api/sessions", params={"task_id": "task-alice"})).json()["total"] == 1
    assert [w["id"] for w in (await bob.get("/api/v1/workspaces")).json()] == [bws["id"]]
    assert [m["id"] for m in (await bob.get("/api/v1/machines")).json()] == [bm["id"]]
    # Alice's session is untouched and nothing reached the daemon on Bob's behalf.
    s = (await alice.get(f"/api/sessions/{a_sid}")).json()
    assert s["status"] == "active" and s["data"].get("x") is None
    assert len(fake.called("LaunchSession")) == launches
    assert fake.called("PauseSession") == [] and fake.called("SendMessage") == [] and fake.called("StopSession") == []
    assert fake.called("InterruptSession") == [] and fake.called("RemoveWorktree") == []
    assert fake.called("ImportTranscript") == []
    # Nothing was created for Bob by any of the refused launches.
    assert (await bob.get("/api/sessions")).json()["total"] == 0
    # Bob cannot import a conversation under Alice's claude session id either (it is hers on every daemon).
    r = await bob.post(
        "/api/v1/user-sessions/import-claude-session",
        json={"workspace_id": bws["id"], "claude_session_id": ALICE_CLAUDE, "messages": []},
    )
    assert r.status_code == 409, r.text
    assert (await bob.get("/api/sessions")).json()["total"] == 0


async def test_resume_ids_resolve_among_the_callers_own_sessions(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    am = await cp.machine(address, "alice")
    aws = await cp.workspace("/srv/alice", "alice", am["id"])
    imp = (
        await alice.post(
            "/api/v1/user-sessions/import-claude-session",
            json={"workspace_id": aws["id"], "claude_session_id": ALICE_CLAUDE, "messages": []},
        )
    ).json()
    # The seed's wording: the agent_session_id of an import used as the resume_session_id.
    r = await alice.post(
        f"/api/v1/workspaces/{aws['id']}/sessions",
        json={"resume_session_id": imp["agent_session_id"], "initial_prompt": "go on"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["payload"]["agent_session_id"] == imp["agent_session_id"]
    # A provider id never seen for this owner is a 404, and a value that is neither kind is a 422:
    # neither reaches the daemon.
    launches = len(fake.called("LaunchSession"))
    r = await alice.post(
        f"/api/v1/workspaces/{aws['id']}/sessions", json={"resume_session_id": "0dead000-0000-4000-8000-000000000000"}
    )
    assert r.status_code == 404, r.text
    for hostile in ("--dangerously-skip-permissions", "--dangerously-bypass-approvals-and-sandbox", "x y"):
        r = await alice.post(f"/api/v1/workspaces/{aws['id']}/sessions", json={"resume_session_id": hostile})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "resume_session_id"]
        r = await alice.post(
            "/api/v1/user-sessions/import-claude-session",
            json={"workspace_id": aws["id"], "claude_session_id": hostile, "messages": []},
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "claude_session_id"], r.text
    assert len(fake.called("LaunchSession")) == launches
    assert (await alice.get("/api/sessions")).json()["total"] == 1
