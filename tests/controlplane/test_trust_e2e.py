"""Trust through REST with the real daemon and the real claude and codex CLIs: two owners on one daemon
never reach each other's conversations or worktrees, a removal never forces away uncommitted work,
and the message answer says whether the message went to the agent or waits for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.controlplane.helpers import poll, wait_messages

pytestmark = pytest.mark.timeout(300)


def _has_reply(text: str):
    return lambda ms: any(m["role"] == "assistant" and text in (m["content"].get("text") or "") for m in ms)


@pytest.fixture
async def two_owners(cp, daemon_factory, claude_provider, codex_provider, git_repo):
    """Alice and Bob, each with a machine entry for the same daemon and a workspace on the same repository."""
    d = daemon_factory(config={"providers": {"claude_code": claude_provider, "codex": codex_provider}})
    out = []
    for name in ("alice", "bob"):
        client = await cp.owner(name)
        m = await cp.machine(d.target, name)
        ws = await cp.workspace(str(git_repo), name, m["id"])
        out.append((client, ws))
    return out


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_another_owners_conversation_cannot_be_resumed_on_a_shared_daemon(two_owners, model_server, provider):
    (alice, aws), (bob, bws) = two_owners
    settings = {"code": {"default_provider": provider}}
    r = await alice.post(
        f"/api/v1/workspaces/{aws['id']}/sessions",
        json={"initial_prompt": "alice's secret is mango", "session_settings": settings},
    )
    assert r.status_code == 200, r.text
    a_sid = r.json()["payload"]["agent_session_id"]
    await wait_messages(alice, a_sid, _has_reply("ok: alice's secret is mango"), timeout=120)

    async def provider_id():
        return (await alice.get(f"/api/sessions/{a_sid}")).json()["provider_session_id"]

    a_provider = await poll(provider_id, what="alice's provider session id")
    listed = (await alice.get("/api/sessions")).json()["sessions"]
    assert [(s["id"], s["provider_session_id"]) for s in listed] == [(a_sid, a_provider)]  # in the list too

    for resume in (a_provider, a_sid):
        r = await bob.post(
            f"/api/v1/workspaces/{bws['id']}/sessions",
            json={"resume_session_id": resume, "initial_prompt": "what is the secret?", "session_settings": settings},
        )
        assert r.status_code == 404, r.text
    assert (await bob.get("/api/sessions")).json()["total"] == 0
    assert not any("what is the secret?" in r.user_text for r in model_server.turn_requests())

    # Alice resumes her own (paused) conversation by the same provider id.
    assert (await alice.patch(f"/api/sessions/{a_sid}", json={"status": "paused"})).status_code == 200
    r = await alice.post(
        f"/api/v1/workspaces/{aws['id']}/sessions",
        json={"resume_session_id": a_provider, "initial_prompt": "what is my secret?", "session_settings": settings},
    )
    assert r.status_code == 200, r.text
    assert r.json()["payload"]["agent_session_id"] == a_sid
    await wait_messages(alice, a_sid, _has_reply("ok: what is my secret?"), timeout=120)
    request = [r for r in model_server.turn_requests() if "what is my secret?" in r.user_text][-1]
    assert "alice's secret is mango" in request.text_dump()


async def test_worktree_names_are_per_owner_and_removal_never_forces_uncommitted_work(two_owners, git_repo):
    (alice, aws), (bob, bws) = two_owners
    r = await alice.post(
        f"/api/v1/workspaces/{aws['id']}/sessions", json={"initial_prompt": "hello", "worktree_name": "feature"}
    )
    assert r.status_code == 200, r.text
    a_sid, a_path = r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])
    await wait_messages(alice, a_sid, _has_reply("ok: hello"), timeout=120)
    (a_path / "draft.txt").write_text("alice's uncommitted draft")

    r = await bob.post(f"/api/v1/workspaces/{bws['id']}/sessions", json={"worktree_name": "feature"})
    assert r.status_code == 409, r.text
    assert r.json()["payload"]["field"] == "worktree_name" and a_sid not in r.text
    r = await alice.post(f"/api/v1/workspaces/{aws['id']}/sessions", json={"worktree_name": "feature"})
    assert r.status_code == 409 and a_sid in r.json()["payload"]["error"], r.text
    assert (await bob.get("/api/sessions")).json()["total"] == 0
    assert (await alice.get("/api/sessions")).json()["total"] == 1

    r = await alice.delete(f"/api/sessions/{a_sid}", params={"remove_worktree": "true"})
    assert r.status_code == 409 and "force" in r.text, r.text
    s = (await alice.get(f"/api/sessions/{a_sid}")).json()
    assert s["status"] == "active"  # refused before anything was stopped
    assert (a_path / "draft.txt").read_text() == "alice's uncommitted draft"
    r = await alice.delete(f"/api/sessions/{a_sid}", params={"remove_worktree": "true", "force": "true"})
    assert r.status_code == 204, r.text
    assert not a_path.exists()


async def test_a_message_sent_during_a_turn_is_answered_queued_and_still_delivered(two_owners, model_server):
    (alice, aws), _ = two_owners
    model_server.script("take your time", text="done taking time", delay=3)
    r = await alice.post(f"/api/v1/workspaces/{aws['id']}/sessions", json={"initial_prompt": "take your time"})
    sid = r.json()["payload"]["agent_session_id"]
    await poll(
        lambda: _sync(any("take your time" in q.user_text for q in model_server.turn_requests())),
        what="the slow turn to reach the model",
    )
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "next one"})
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    await wait_messages(
        alice,
        sid,
        lambda ms: sum(bool(m["metadata"].get("turn_complete")) for m in ms) >= 2,
        timeout=120,
        what="both turns to end",
    )
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "now idle"})
    assert r.json()["status"] == "sent", r.text


async def _sync(value):
    return value


async def test_an_event_too_deep_for_protobuf_is_stored_in_a_safe_form_and_ingest_moves_on(
    two_owners, model_server, tmp_path
):
    (alice, aws), _ = two_owners
    deep: dict = {"leaf": "bottom"}
    for _ in range(150):
        deep = {"n": deep}
    model_server.script(
        "go deep",
        tool=("Write", {"file_path": str(tmp_path / "d.txt"), "content": "x", "nested": deep}),
        text="deep done",
    )
    r = await alice.post(f"/api/v1/workspaces/{aws['id']}/sessions", json={"initial_prompt": "go deep"})
    sid = r.json()["payload"]["agent_session_id"]
    msgs = await wait_messages(alice, sid, _has_reply("deep done"), timeout=120, what="the turn after the deep event")
    (use,) = [m for m in msgs if m["content"].get("type") == "tool_use" and "nested" in m["content"]["arguments"]]
    assert any("nested deeper" in note for note in use["metadata"]["carriable"])
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "still there?"})
    assert r.status_code == 200, r.text
    await wait_messages(alice, sid, _has_reply("ok: still there?"), timeout=120)
