"""Approvals through REST with the real daemon and the real claude and codex: the agent's request is
visible over REST and SSE, the web app's decision runs (or refuses) the command, approvals survive a
control-plane restart, and they are the owner's alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.controlplane.helpers import poll, read_sse, wait_messages

pytestmark = pytest.mark.timeout(300)

# Not an edit (claude runs those unasked in the worktree), and not a command codex knows to be safe.
COMMAND = 'python3 -c \'open("ran.txt", "w").write("approved")\''


@pytest.fixture
def daemon_target(daemon_factory, claude_provider, codex_provider) -> str:
    return daemon_factory(config={"providers": {"claude_code": claude_provider, "codex": codex_provider}}).target


async def _owner(cp, name: str, target: str, repo: Path) -> tuple[object, dict]:
    client = await cp.owner(name)
    m = await cp.machine(target, name)
    return client, await cp.workspace(str(repo), name, m["id"])


async def _launch(client, ws: dict, provider: str, prompt: str = "please run the check", **code) -> tuple[str, Path]:
    r = await client.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={"initial_prompt": prompt, "session_settings": {"code": {"default_provider": provider, **code}}},
    )
    assert r.status_code == 200, r.text
    return r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])


async def _pending(client, sid: str) -> dict:
    async def first():
        r = await client.get(f"/api/sessions/{sid}/approvals", params={"status": "pending"})
        assert r.status_code == 200, r.text
        return r.json()["approvals"][0] if r.json()["approvals"] else None

    return await poll(first, timeout=90, what="a pending approval")


def _turn_done(ms: list[dict]) -> bool:
    return any(m["metadata"].get("turn_complete") for m in ms)


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_the_web_app_sees_the_request_over_rest_and_sse_and_its_decision_runs_the_command(
    cp, daemon_target, git_repo, model_server, provider
):
    model_server.script("run the check", command=COMMAND, text="the check ran")
    alice, ws = await _owner(cp, "alice", daemon_target, git_repo)
    sid, worktree = await _launch(alice, ws, provider)
    pending = await _pending(alice, sid)
    assert pending["kind"] == "permission" and pending["status"] == "pending" and pending["decided_at"] is None
    assert "ran.txt" in pending["input"]["command"]
    await poll(lambda: _count(alice, sid, 1), what="pending_approvals = 1 in the session")
    listed = (await alice.get("/api/sessions")).json()["sessions"][0]
    assert listed["pending_approvals"] == 1
    events = await read_sse(
        alice,
        f"/api/sessions/{sid}/events",
        1,
        until=lambda evs: any(e["content"]["type"] == "approval_request" for _, e in evs),
    )
    request = next(e for _, e in events if e["content"]["type"] == "approval_request")
    assert request["metadata"]["approval_id"] == pending["id"] and request["content"]["name"] == pending["tool_name"]
    assert not (worktree / "ran.txt").exists()

    r = await alice.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "allow"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "allowed" and r.json()["decided_by"] == "user" and r.json()["decided_at"]
    messages = await wait_messages(alice, sid, _turn_done, timeout=120, what="the turn's end")
    assert (worktree / "ran.txt").read_text() == "approved"
    decisions = [m for m in messages if m["content"]["type"] == "approval_decision"]
    assert [d["metadata"]["approval_status"] for d in decisions] == ["allowed"]
    await poll(lambda: _count(alice, sid, 0), what="pending_approvals = 0")

    again = await alice.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "deny"})
    assert again.status_code == 409 and "allowed already" in again.text
    unknown = await alice.post(f"/api/sessions/{sid}/approvals/ap-0000000000000000", json={"decision": "allow"})
    assert unknown.status_code == 404


async def _count(client, sid: str, n: int) -> bool:
    return (await client.get(f"/api/sessions/{sid}")).json()["pending_approvals"] == n


async def test_a_pending_approval_survives_a_controlplane_restart(
    controlplane_factory, daemon_target, git_repo, model_server
):
    model_server.script("run the check", command=COMMAND, text="ran after all")
    cp1 = await controlplane_factory()
    alice, ws = await _owner(cp1, "alice", daemon_target, git_repo)
    sid, worktree = await _launch(alice, ws, "claude_code")
    pending = await _pending(alice, sid)
    token = alice.headers["authorization"].split()[1]
    await cp1.stop()

    cp2 = await controlplane_factory()
    alice2 = cp2.client(token)
    assert (await _pending(alice2, sid))["id"] == pending["id"]
    r = await alice2.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "allow"})
    assert r.status_code == 200, r.text
    await wait_messages(alice2, sid, _turn_done, timeout=120)
    assert (worktree / "ran.txt").read_text() == "approved"


async def test_another_owners_approvals_are_not_found(cp, daemon_target, git_repo, model_server):
    model_server.script("run the check", command=COMMAND)
    alice, aws = await _owner(cp, "alice", daemon_target, git_repo)
    bob, _ = await _owner(cp, "bob", daemon_target, git_repo)
    sid, worktree = await _launch(alice, aws, "claude_code")
    pending = await _pending(alice, sid)
    assert (await bob.get(f"/api/sessions/{sid}/approvals")).status_code == 404
    r = await bob.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "allow"})
    assert r.status_code == 404
    r = await alice.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "maybe"})
    assert r.status_code == 422 and "decision" in r.text
    r = await alice.post(f"/api/sessions/{sid}/approvals/{pending['id']}", json={"decision": "allow", "x": 1})
    assert r.status_code == 422 and "x" in r.text
    assert (await _pending(alice, sid))["status"] == "pending"
    assert not (worktree / "ran.txt").exists()


async def test_the_workspace_allow_list_lets_its_commands_run_unasked(cp, daemon_target, git_repo, model_server):
    model_server.script("run the check", command=COMMAND, text="ran unasked")
    alice, ws = await _owner(cp, "alice", daemon_target, git_repo)
    r = await cp.admin.patch(f"/api/v1/workspaces/{ws['id']}", json={"allowed_tools": ["Bash(python3 -c:*)"]})
    assert r.status_code == 200 and r.json()["allowed_tools"] == ["Bash(python3 -c:*)"], r.text
    sid, worktree = await _launch(alice, ws, "codex")
    await wait_messages(alice, sid, _turn_done, timeout=120)
    assert (worktree / "ran.txt").read_text() == "approved"
    approvals = (await alice.get(f"/api/sessions/{sid}/approvals")).json()["approvals"]
    assert approvals and all(a["decided_by"] == "rule" for a in approvals)


async def test_permission_settings_that_cannot_hold_are_refused_before_anything_runs(
    cp, daemon_target, git_repo, model_server
):
    alice, ws = await _owner(cp, "alice", daemon_target, git_repo)
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={
            "initial_prompt": "hi",
            "session_settings": {"code": {"allowed_tools": ["--dangerously-skip-permissions"]}},
        },
    )
    assert r.status_code == 422 and "allowed_tools" in r.text
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={"initial_prompt": "hi", "session_settings": {"code": {"permissions": "sometimes"}}},
    )
    assert r.status_code == 422 and "permissions" in r.text
    if os.geteuid() == 0:
        r = await alice.post(
            f"/api/v1/workspaces/{ws['id']}/sessions",
            json={"initial_prompt": "hi", "session_settings": {"code": {"permissions": "auto"}}},
        )
        assert r.status_code == 409 and "root" in r.text, r.text
    assert (await alice.get("/api/sessions")).json()["total"] == 0
    assert not model_server.turn_requests()
