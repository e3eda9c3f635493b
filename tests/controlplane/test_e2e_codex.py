"""End to end with the real daemon and the real codex CLI: launch, the turn stored as messages, a
follow-up turn with the history; plus a control-plane restart mid-session (no gap, no duplicate)."""

from __future__ import annotations

import pytest

from tests.controlplane.helpers import wait_messages


def _has_reply(text: str):
    return lambda ms: any(m["role"] == "assistant" and text in (m["content"].get("text") or "") for m in ms)


@pytest.fixture
async def codex_env(cp, daemon_factory, codex_provider, claude_provider, git_repo):
    d = daemon_factory(config={"providers": {"codex": codex_provider, "claude_code": claude_provider}})
    alice = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    return alice, ws, d


async def test_codex_launch_and_follow_up_turn_through_the_session_api(cp, codex_env, model_server):
    alice, ws, _d = codex_env
    r = await alice.post(
        "/api/sessions",
        json={"agent_id": "CODEX", "task_id": "task-1", "prompt": "codex first", "workspace_id": ws["id"]},
    )
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["agent_id"] == "CODEX" and s["launch"]["payload"]["provider"] == "codex"
    # Answered before the worktree's files were written (first launch on the repository: no pooled one).
    assert s["status"] == ("created" if s["launch"]["payload"]["checkout_pending"] else "active")
    sid = s["id"]
    await wait_messages(alice, sid, _has_reply("ok: codex first"), what="codex first turn", timeout=90)
    assert (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "active"
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "codex second"})
    assert r.status_code == 200, r.text
    msgs = await wait_messages(alice, sid, _has_reply("ok: codex second"), what="codex second turn", timeout=90)
    seqs = [m["seq"] for m in msgs]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "codex first" in model_server.turn_requests("openai")[-1].text_dump()
    listed = (await alice.get("/api/sessions", params={"agent_id": "CODEX", "task_id": "task-1"})).json()
    assert [x["id"] for x in listed["sessions"]] == [sid]
    assert listed["sessions"][0]["message_count"] >= len(msgs)  # trailing events may have arrived since


async def test_controlplane_restart_mid_session_stores_every_event_once(controlplane_factory, cp, codex_env):
    alice, ws, _d = codex_env
    token = alice.headers["authorization"].split()[1]
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={"initial_prompt": "before restart", "session_settings": {"code": {"default_provider": "claude_code"}}},
    )
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]
    await wait_messages(alice, sid, _has_reply("ok: before restart"), timeout=90)
    # Send a message and stop the control plane at once: the turn happens while it is down.
    assert (await alice.post(f"/api/sessions/{sid}/message", json={"content": "during downtime"})).status_code == 200
    await cp.stop()
    cp2 = await controlplane_factory()
    alice2 = cp2.client(token)
    msgs = await wait_messages(alice2, sid, _has_reply("ok: during downtime"), timeout=90)
    r = await alice2.post(f"/api/sessions/{sid}/message", json={"content": "after restart"})
    assert r.status_code == 200, r.text
    msgs = await wait_messages(alice2, sid, _has_reply("ok: after restart"), timeout=90)
    seqs = [m["seq"] for m in msgs]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len({m["id"] for m in msgs}) == len(msgs)
