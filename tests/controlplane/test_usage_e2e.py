"""Usage through REST with the real claude and codex: each turn's tokens, as the scripted model reported
them, are summed per session in the detail and the list; claude's cost is the CLI's own running total."""

from __future__ import annotations

import pytest

from tests.controlplane.helpers import poll, wait_messages

pytestmark = pytest.mark.timeout(300)

# What tests/support/model_server.py reports for every conversation request.
PER_REQUEST = {"claude_code": (12, 7), "codex": (21, 9)}


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_session_usage_is_the_sum_of_what_the_model_reported_for_each_turn(
    cp, daemon_factory, claude_provider, codex_provider, git_repo, model_server, provider, tmp_path
):
    d = daemon_factory(config={"providers": {"claude_code": claude_provider, "codex": codex_provider}})
    alice = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    model_server.script("write the notes", write_file=(str(tmp_path / "notes.txt"), "n"), text="noted")
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={
            "initial_prompt": "please write the notes",
            "session_settings": {
                "code": {"default_provider": provider, "permissions": "auto" if provider == "codex" else "deny"}
            },
        },
    )
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]

    def turns(n):
        return lambda ms: sum(1 for m in ms if m["metadata"].get("turn_complete")) >= n

    await wait_messages(alice, sid, turns(1), timeout=120)
    assert (
        await alice.post(f"/api/sessions/{sid}/message", json={"content": "and now just say hi"})
    ).status_code == 200
    messages = await wait_messages(alice, sid, turns(2), timeout=120)

    requests = len(model_server.turn_requests("anthropic" if provider == "claude_code" else "openai"))
    assert requests == 3  # the tool call, its answer, the second turn
    tokens_in, tokens_out = PER_REQUEST[provider]

    async def usage():
        u = (await alice.get(f"/api/sessions/{sid}")).json()["usage"]
        return u if u["turns"] == 2 else None

    u = await poll(usage, what="both turns' usage")
    assert (u["input_tokens"], u["output_tokens"]) == (requests * tokens_in, requests * tokens_out)
    assert u["cache_read_tokens"] == 0 and u["cache_creation_tokens"] == 0 and u["duration_ms"] > 0
    ends = [m for m in messages if m["metadata"].get("turn_complete")]
    if provider == "claude_code":
        assert u["cost_usd"] == pytest.approx(ends[-1]["metadata"]["total_cost_usd"])  # claude's running total
        assert u["cost_usd"] > 0
    else:
        assert u["cost_usd"] is None  # codex does not say
    listed = (await alice.get("/api/sessions")).json()["sessions"][0]
    assert listed["usage"] == u

    # The usage report sums the same turns, per workspace, owner and day; others see none of it.
    for group_by, key in (("workspace", ws["id"]), ("owner", "alice")):
        report = (await alice.get("/api/v1/usage", params={"group_by": group_by})).json()
        (group,) = report["groups"]
        assert group["key"] == key and group["sessions"] == 1
        assert {k: group[k] for k in u} == pytest.approx(u)
    day = (await alice.get("/api/v1/usage", params={"group_by": "day"})).json()["groups"]
    assert len(day) == 1 and day[0]["turns"] == 2 and len(day[0]["key"]) == 10
    bob = await cp.owner("bob")
    assert (await bob.get("/api/v1/usage")).json()["groups"] == []
    assert len((await cp.admin.get("/api/v1/usage", params={"group_by": "owner"})).json()["groups"]) == 1
    later = (await alice.get("/api/v1/usage", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert later["groups"] == []
    r = await alice.get("/api/v1/usage", params={"group_by": "planet"})
    assert r.status_code == 422 and "group_by" in r.text
    r = await alice.get("/api/v1/usage", params={"since": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"})
    assert r.status_code == 422 and "until" in r.text


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_a_budget_of_one_turn_stops_the_session_after_its_first_turn(
    cp, daemon_factory, claude_provider, codex_provider, git_repo, model_server, provider
):
    d = daemon_factory(config={"providers": {"claude_code": claude_provider, "codex": codex_provider}})
    alice = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    model_server.script("a slow first turn", text="first answer", delay=2)
    r = await alice.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={
            "initial_prompt": "a slow first turn",
            "session_settings": {"code": {"default_provider": provider, "max_turns": 1}},
        },
    )
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]
    await poll(lambda: _turn_started(model_server), what="the first turn to reach the model")
    queued = await alice.post(f"/api/sessions/{sid}/message", json={"content": "a second turn"})
    assert queued.status_code == 200 and queued.json()["status"] == "queued", queued.text

    async def completed():
        return (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "completed"

    await poll(completed, timeout=120, what="the session to stop at its budget")
    messages = await wait_messages(alice, sid, lambda ms: any("budget reached" in str(m["content"]) for m in ms))
    assert any("max_turns 1" in str(m["content"]) for m in messages)
    assert any("not delivered" in str(m["content"]) and "budget" in str(m["content"]) for m in messages)
    assert not any("a second turn" in r.user_text for r in model_server.turn_requests())
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "more please"})
    assert r.status_code == 409, r.text
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})
    assert r.status_code == 409 and "max_turns" in r.text, r.text


def _turn_started(model_server) -> bool:
    return any("a slow first turn" in r.user_text for r in model_server.turn_requests())


async def test_a_workspace_cost_budget_stops_a_claude_session_once_claude_reports_that_much(
    cp, daemon_factory, claude_provider, git_repo, model_server
):
    d = daemon_factory(config={"providers": {"claude_code": claude_provider}})
    alice = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    r = await cp.admin.patch(f"/api/v1/workspaces/{ws['id']}", json={"max_cost_usd": 0.0001})
    assert r.status_code == 200 and r.json()["max_cost_usd"] == 0.0001, r.text
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hello there"})
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]

    async def completed():
        return (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "completed"

    await poll(completed, timeout=120, what="the session to stop at its cost budget")
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "again"})
    assert r.status_code == 409 and "max_cost_usd" in r.text, r.text
