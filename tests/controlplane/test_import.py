"""Import of a Claude CLI session: one transaction (all or nothing), messages kept in order, and a later
launch writes the transcript on the daemon first (ImportTranscript) and resumes it."""

from __future__ import annotations


def _messages(n: int) -> list[dict]:
    out = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(
            {
                "message_id": f"m{i}",
                "role": role,
                "content": {"type": "text", "text": f"message number {i}"},
                "created_at": f"2024-01-16T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "metadata": {"n": i},
            }
        )
    return out


async def test_import_stores_every_message_in_order(cp):
    alice = await cp.owner("alice")
    ws = await cp.workspace("/srv/repo", "alice", None)
    msgs = _messages(1000)
    msgs[1]["content"] = {"type": "tool_use", "name": "Bash", "tool_use_id": "tu1", "arguments": {"cmd": "ls"}}
    msgs[2]["content"] = {"type": "tool_result", "tool_use_id": "tu1", "output": {"files": ["a"]}, "is_error": False}
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={
            "workspace_id": ws["id"],
            "claude_session_id": "0f9e0000-0000-4000-8000-00000000c1a0",
            "messages": msgs,
            "worktree_name": "imported-wt",
            "session_name": "from laptop",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["error"] is None and body["message_count"] == 1000
    sid = body["agent_session_id"]
    s = (await alice.get(f"/api/sessions/{sid}")).json()
    assert s["message_count"] == 1000 and s["agent_id"] == "CLAUDE_CODE" and s["status"] == "created"
    assert (
        s["provider_session_id"] == "0f9e0000-0000-4000-8000-00000000c1a0"
        and s["user_session_id"] == body["user_session_id"]
    )
    page1 = (await alice.get(f"/api/sessions/{sid}/messages", params={"limit": 600})).json()
    page2 = (await alice.get(f"/api/sessions/{sid}/messages", params={"limit": 600, "offset": 600})).json()
    assert page1["total"] == 1000 and len(page1["messages"]) == 600 and len(page2["messages"]) == 400
    got = page1["messages"] + page2["messages"]
    assert [m["metadata"]["n"] for m in got] == list(range(1000))
    assert got[0]["content"] == {"type": "text", "text": "message number 0"}
    assert got[1]["content"]["arguments"] == {"cmd": "ls"}
    assert got[2]["content"]["output"] == {"files": ["a"]}
    assert got[5]["created_at"] == "2024-01-16T10:00:05Z"
    assert all(m["seq"] is None for m in got)


async def test_import_with_one_bad_message_writes_nothing(cp):
    alice = await cp.owner("alice")
    ws = await cp.workspace("/srv/repo", "alice", None)
    msgs = _messages(50)
    msgs[37]["role"] = "wizard"
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={"workspace_id": ws["id"], "claude_session_id": "0c100000-0000-4000-8000-000000000001", "messages": msgs},
    )
    assert r.status_code == 422
    assert ["body", "messages", 37, "role"] in [e["loc"] for e in r.json()["detail"]]
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={"workspace_id": ws["id"], "claude_session_id": "bad id/../x", "messages": []},
    )
    assert r.status_code == 422 and ["body", "claude_session_id"] in [e["loc"] for e in r.json()["detail"]]
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={
            "workspace_id": "ws-nope",
            "claude_session_id": "0c100000-0000-4000-8000-000000000001",
            "messages": _messages(3),
        },
    )
    assert r.status_code == 404
    assert (await alice.get("/api/sessions")).json()["total"] == 0


async def test_launching_an_import_writes_the_transcript_then_resumes_it(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={
            "workspace_id": ws["id"],
            "claude_session_id": "0abc0000-0000-4000-8000-000000000abc",
            "messages": _messages(10),
            "worktree_name": "imp",
        },
    )
    imported = r.json()
    # Found by resume_session_id = the claude_session_id as well as by agent_session_id.
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={"resume_session_id": "0abc0000-0000-4000-8000-000000000abc", "initial_prompt": "go on"},
    )
    assert r.status_code == 200, r.text
    payload = r.json()["payload"]
    assert payload["agent_session_id"] == imported["agent_session_id"]
    assert payload["user_session_id"] == imported["user_session_id"]
    (imp,) = fake.called("ImportTranscript")
    assert (
        imp.provider_session_id == "0abc0000-0000-4000-8000-000000000abc"
        and imp.repository == "/srv/repo"
        and imp.worktree_name == "imp"
    )
    assert [t.content.text for t in imp.messages] == [f"message number {i}" for i in range(10)]
    assert imp.messages[3].message_id == "m3" and imp.messages[3].metadata["n"] == 3
    (launch,) = fake.called("LaunchSession")
    assert (
        launch.resume_session_id == "0abc0000-0000-4000-8000-000000000abc"
        and launch.agent_session_id == imported["agent_session_id"]
    )
    assert launch.worktree_name == "imp"
    # The transcript is written once per machine.
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions", json={"agent_session_id": imported["agent_session_id"]}
    )
    assert r.status_code == 200
    assert len(fake.called("ImportTranscript")) == 1


async def test_launching_an_empty_import_starts_fresh_without_a_transcript(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={"workspace_id": ws["id"], "claude_session_id": "0e000000-0000-4000-8000-00000000e000", "messages": []},
    )
    assert r.json()["message_count"] == 0
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions", json={"agent_session_id": r.json()["agent_session_id"]}
    )
    assert r.status_code == 200, r.text
    assert fake.called("ImportTranscript") == []
    assert fake.called("LaunchSession")[0].resume_session_id == ""


async def test_an_import_without_a_worktree_name_gets_a_worktree_of_its_own_at_launch(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    imported = (
        await alice.post(
            "/api/v1/user-sessions/import-claude-session",
            json={
                "workspace_id": ws["id"],
                "claude_session_id": "0e000000-0000-4000-8000-00000000e001",
                "messages": _messages(2),
                "worktree_name": None,
            },
        )
    ).json()
    sid = imported["agent_session_id"]

    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"agent_session_id": sid})

    assert r.status_code == 200, r.text
    assert fake.called("ImportTranscript")[0].worktree_name == f"berth/{sid}"
    assert fake.called("LaunchSession")[0].worktree_name == f"berth/{sid}"
    assert (await alice.get(f"/api/sessions/{sid}")).json()["worktree_name"] == f"berth/{sid}"
