"""The Session API (seed session-api.txt): create, list with filters and paging, get, patch, delete."""

from __future__ import annotations

from tests.controlplane.helpers import wait_messages


async def test_create_returns_the_seed_shape_with_status_created(cp):
    alice = await cp.owner("alice")
    r = await alice.post(
        "/api/sessions", json={"agent_id": "CLAUDE_CODE", "task_id": "task-xyz", "prompt": "Initial prompt"}
    )
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["id"].startswith("session-") and s["agent_id"] == "CLAUDE_CODE" and s["task_id"] == "task-xyz"
    assert s["status"] == "created" and s["created_at"].endswith("Z") and s["launch"] is None
    got = (await alice.get(f"/api/sessions/{s['id']}")).json()
    assert got["prompt"] == "Initial prompt" and got["message_count"] == 0 and got["data"] == {}
    assert got["last_active"] is None


async def test_list_filters_by_task_agent_and_status_with_paging(cp):
    alice = await cp.owner("alice")
    ids = {}
    for i, (agent, task) in enumerate(
        [("CLAUDE_CODE", "t1"), ("CODEX", "t1"), ("CLAUDE_CODE", "t2"), ("CODEX", "t2"), ("CODEX", "t3")]
    ):
        ids[i] = (await alice.post("/api/sessions", json={"agent_id": agent, "task_id": task})).json()["id"]
    assert (await alice.patch(f"/api/sessions/{ids[3]}", json={"status": "completed"})).status_code == 200

    async def listed(**params) -> set[str]:
        r = await alice.get("/api/sessions", params=params)
        assert r.status_code == 200, r.text
        return {s["id"] for s in r.json()["sessions"]}

    assert await listed(task_id="t1") == {ids[0], ids[1]}
    assert await listed(agent_id="CODEX") == {ids[1], ids[3], ids[4]}
    assert await listed(status="completed") == {ids[3]}
    assert await listed(status="created", agent_id="CODEX") == {ids[1], ids[4]}
    assert await listed(task_id="t2", agent_id="CLAUDE_CODE") == {ids[2]}
    assert await listed(task_id="none") == set()
    page1 = (await alice.get("/api/sessions", params={"limit": 2})).json()
    page2 = (await alice.get("/api/sessions", params={"limit": 2, "offset": 2})).json()
    page3 = (await alice.get("/api/sessions", params={"limit": 2, "offset": 4})).json()
    assert page1["total"] == 5 and len(page1["sessions"]) == 2 and len(page3["sessions"]) == 1
    past_end = (await alice.get("/api/sessions", params={"limit": 2, "offset": 9})).json()
    assert past_end["total"] == 5 and past_end["sessions"] == []
    filtered = (await alice.get("/api/sessions", params={"agent_id": "CODEX", "limit": 1})).json()
    assert filtered["total"] == 3 and len(filtered["sessions"]) == 1
    all_ids = [s["id"] for p in (page1, page2, page3) for s in p["sessions"]]
    assert sorted(all_ids) == sorted(ids.values())
    first = page1["sessions"][0]
    assert set(first) >= {"id", "agent_id", "task_id", "status", "created_at", "last_active", "message_count"}


async def test_patch_merges_data_and_updates_prompt(cp):
    alice = await cp.owner("alice")
    sid = (await alice.post("/api/sessions", json={"agent_id": "CODEX"})).json()["id"]
    r = await alice.patch(f"/api/sessions/{sid}", json={"data": {"notes": "a", "keep": 1}})
    assert r.json()["data"] == {"notes": "a", "keep": 1}
    r = await alice.patch(f"/api/sessions/{sid}", json={"data": {"notes": "b"}, "prompt": "new prompt"})
    assert r.status_code == 200
    assert r.json()["data"] == {"notes": "b", "keep": 1} and r.json()["prompt"] == "new prompt"


async def test_create_with_prompt_and_workspace_launches_and_patch_active_launches_created(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    # The only workspace is used when none is given.
    r = await alice.post(
        "/api/sessions", json={"agent_id": "CODEX", "task_id": "t", "prompt": "do it", "model": "gpt-x"}
    )
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["status"] == "active" and s["workspace_id"] == ws["id"] and s["launch"]["status"] == "ok"
    (req,) = fake.called("LaunchSession")
    assert req.initial_prompt == "do it" and req.session_settings.code.default_provider == "codex"
    assert req.session_settings.code.providers.codex.model == "gpt-x"
    msgs = await wait_messages(alice, s["id"], lambda ms: len(ms) == 3)
    assert msgs[-1]["content"]["text"] == "echo: do it"
    # Created without a prompt, launched by PATCH status active with the prompt given then.
    r = await alice.post("/api/sessions", json={"agent_id": "CLAUDE_CODE"})
    sid = r.json()["id"]
    assert r.json()["status"] == "created" and len(fake.called("LaunchSession")) == 1
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active", "prompt": "start now"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["prompt"] == "start now"
    assert fake.called("LaunchSession")[-1].initial_prompt == "start now"
    assert fake.called("LaunchSession")[-1].agent_session_id == sid


async def test_delete_stops_the_agent_and_removes_rows_keeping_the_worktree_unless_asked(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    sids = []
    for _ in range(2):
        r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "x"})
        sids.append(r.json()["payload"]["agent_session_id"])
    await wait_messages(alice, sids[0], lambda ms: len(ms) == 3)
    assert (await alice.delete(f"/api/sessions/{sids[0]}")).status_code == 204
    assert [r.agent_session_id for r in fake.called("StopSession")] == [sids[0]]
    assert fake.called("RemoveWorktree") == []
    assert (await alice.get(f"/api/sessions/{sids[0]}")).status_code == 404
    assert (await alice.get(f"/api/sessions/{sids[0]}/messages")).status_code == 404
    assert (await alice.delete(f"/api/sessions/{sids[1]}", params={"remove_worktree": "true"})).status_code == 204
    check, rm = fake.called("RemoveWorktree")
    # Checked before the agent is stopped, then removed; never forced unless the caller says so.
    assert check.check_only and not rm.check_only
    assert rm.force is False and rm.agent_session_id == sids[1] and rm.owner == "alice"
    assert (await alice.get("/api/sessions")).json()["total"] == 0


async def test_message_answer_has_the_seed_shape(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    sid = (await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={})).json()["payload"]["agent_session_id"]
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "Please continue with the implementation"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"message_id", "status", "timestamp"}
    assert body["status"] == "sent" and body["message_id"].startswith("msg-")
    (sent,) = fake.called("SendMessage")
    assert sent.message_id == body["message_id"] and sent.content == "Please continue with the implementation"
    msgs = await wait_messages(
        alice,
        sid,
        lambda ms: any(m["content"].get("text") == "echo: Please continue with the implementation" for m in ms),
    )
    assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))


async def test_interrupt_stops_the_turn_on_the_daemon_and_needs_a_running_session(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    sid = (await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "long"})).json()[
        "payload"
    ]["agent_session_id"]
    r = await alice.post(f"/api/sessions/{sid}/interrupt")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert [x.agent_session_id for x in fake.called("InterruptSession")] == [sid]
    other = (await alice.post("/api/sessions", json={"agent_id": "CODEX"})).json()["id"]
    assert (await alice.post(f"/api/sessions/{other}/interrupt")).status_code == 409
    bob = await cp.owner("bob")
    assert (await bob.post(f"/api/sessions/{sid}/interrupt")).status_code == 404


async def test_cors_allows_configured_origins_only(controlplane_factory):
    cp = await controlplane_factory(cors_origins=["https://app.example.com"])
    anon = cp.client(None)
    headers = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    r = await anon.options("/api/sessions", headers=headers)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    r = await anon.options("/api/sessions", headers={**headers, "Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in r.headers
