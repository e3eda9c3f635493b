"""End to end with the real daemon and the real claude CLI against the scripted model server: launch,
turns stored as messages, follow-ups, SSE live + resume, pause/resume, import → resume, daemon down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.controlplane.helpers import poll, read_sse, wait_messages


def _texts(msgs: list[dict], role: str = "assistant") -> list[str]:
    return [m["content"].get("text") or "" for m in msgs if m["role"] == role and m["content"].get("type") == "text"]


def _turns_over(msgs: list[dict]) -> int:
    return sum(bool(m["metadata"].get("turn_complete")) for m in msgs)


def _has_reply(text: str):
    return lambda ms: any(text in t for t in _texts(ms))


@pytest.fixture
async def claude_env(cp, daemon_factory, claude_provider, git_repo):
    d = daemon_factory(config={"providers": {"claude_code": claude_provider}})
    alice = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    return alice, ws, d


async def test_claude_launch_turns_followups_sse_pause_resume_and_delete(cp, claude_env, model_server):
    alice, ws, _d = claude_env
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={
            "initial_prompt": "first question",
            "worktree_name": "e2e-claude",
            "session_settings": {"code": {"default_provider": "claude_code"}},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    payload = r.json()["payload"]
    sid = payload["agent_session_id"]
    worktree = Path(payload["worktree_path"])
    assert worktree.is_dir() and (worktree / ".git").exists()
    assert payload["user_session_id"] and payload["machine_id"] and payload["workspace_id"] == ws["id"]

    # Until the turn has ended (its result, after the text): the next message then goes straight to claude.
    msgs = await wait_messages(
        alice, sid, lambda ms: _has_reply("ok: first question")(ms) and _turns_over(ms) >= 1, what="first turn"
    )
    assert "first question" in _texts(msgs, "user")
    s = (await alice.get(f"/api/sessions/{sid}")).json()
    assert s["status"] == "active" and s["agent_id"] == "CLAUDE_CODE"
    assert s["data"]["workdir"] == str(worktree) and s["message_count"] >= len(msgs)

    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "second question"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "sent"
    msgs = await wait_messages(alice, sid, _has_reply("ok: second question"), what="second turn")
    seqs = [m["seq"] for m in msgs]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    # The second model request carried the first turn as history.
    assert "first question" in model_server.turn_requests("anthropic")[-1].text_dump()

    # SSE: everything after the last stored seq arrives live, and a reconnect resumes after an id.
    last = seqs[-1]

    async def third() -> None:
        assert (await alice.post(f"/api/sessions/{sid}/message", json={"content": "third question"})).status_code == 200

    live = await read_sse(
        alice,
        f"/api/sessions/{sid}/events",
        0,
        headers={"Last-Event-ID": str(last)},
        on_open=third,
        timeout=90,
        until=lambda evs: any("ok: third question" in (e[1]["content"].get("text") or "") for e in evs),
    )
    assert [i for i, _ in live] == list(range(last + 1, last + 1 + len(live)))
    resumed = await read_sse(
        alice, f"/api/sessions/{sid}/events", len(live) - 1, headers={"Last-Event-ID": str(last + 1)}
    )
    assert resumed == live[1:]

    # Pause ends the process; messages are refused; resume continues the same conversation.
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "paused"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused"
    assert (await alice.post(f"/api/sessions/{sid}/message", json={"content": "while paused"})).status_code == 409
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})
    assert r.status_code == 200, r.text
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "after resume"})
    assert r.status_code == 200, r.text
    await wait_messages(alice, sid, _has_reply("ok: after resume"), what="turn after resume", timeout=90)
    assert "first question" in model_server.turn_requests("anthropic")[-1].text_dump()

    r = await alice.delete(f"/api/sessions/{sid}", params={"remove_worktree": "true"})
    assert r.status_code == 204, r.text
    assert not worktree.exists()
    assert (await alice.get(f"/api/sessions/{sid}")).status_code == 404


@pytest.mark.parametrize("by", ["resume_session_id", "agent_session_id"])
async def test_import_1000_messages_then_launch_resumes_with_the_history(cp, claude_env, model_server, by):
    """`by` resume_session_id is the import seed's own wording: its agent_session_id as the resume id."""
    alice, ws, _d = claude_env
    messages = []
    for i in range(1000):
        role = "user" if i % 2 == 0 else "assistant"
        text = f"imported line {i}"
        if i == 500:
            text = "remember the code word PELICAN-42"
        messages.append(
            {
                "message_id": f"m{i}",
                "role": role,
                "content": {"type": "text", "text": text},
                "created_at": "2024-01-16T10:00:00Z",
            }
        )
    r = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={
            "workspace_id": ws["id"],
            "claude_session_id": "5a1d3c9e-0000-4000-8000-000000000001",
            "messages": messages,
            "worktree_name": "imported",
            "session_name": "laptop",
        },
    )
    assert r.status_code == 200, r.text
    imported = r.json()
    assert imported["success"] and imported["message_count"] == 1000
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={by: imported["agent_session_id"], "initial_prompt": "what was the code word?"},
    )
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]
    assert sid == imported["agent_session_id"]
    await wait_messages(alice, sid, _has_reply("ok: what was the code word?"), what="the resumed turn", timeout=90)
    dump = model_server.turn_requests("anthropic")[-1].text_dump()
    assert "PELICAN-42" in dump and "imported line 999" in dump and "imported line 0" in dump
    s = (await alice.get(f"/api/sessions/{sid}")).json()
    assert s["message_count"] > 1000 and s["status"] == "active"


async def test_real_daemon_down_answers_error_and_marks_session_failed(cp, claude_env):
    alice, ws, d = claude_env
    d.stop()
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "anyone?"})
    assert r.status_code == 502
    assert r.json()["status"] == "error" and r.json()["payload"]["error"]
    sid = r.json()["payload"]["agent_session_id"]

    async def failed():
        return (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "failed"

    await poll(failed, what="session failed")
