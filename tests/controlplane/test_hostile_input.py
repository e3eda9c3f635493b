"""Hostile values in every body field and query that once gave 500s and left rows: lone surrogates, NaN,
numbers past float range, nesting past what protobuf carries, offsets and seqs past 64 bits. Each is a
4xx naming where it is, and a refused request writes nothing (later reads stay 200)."""

from __future__ import annotations

import json

import pytest

SURROGATE = '"\\ud800"'  # a JSON string holding a lone surrogate, as a hostile client writes it


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


HOSTILE = {
    "lone-surrogate": SURROGATE,
    "nan": "NaN",
    "infinity": "-Infinity",
    "past-float-range": "1" + "0" * 400,
    "too-deep": _deep(120),
}


@pytest.fixture
async def alice_env(cp, fake_daemon):
    fake, address = fake_daemon
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    r = await alice.post("/api/sessions", json={"agent_id": "CLAUDE_CODE", "workspace_id": ws["id"]})
    assert r.status_code == 201, r.text
    return alice, ws, r.json()["id"], fake


def _body(template: str, value: str) -> bytes:
    return template.replace("@", value).encode()


def _where(r) -> list:
    return [e["loc"] for e in r.json()["detail"]]


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_hostile_json_values_are_422_naming_the_field_and_write_nothing(cp, alice_env, kind):
    alice, ws, sid, fake = alice_env
    value = HOSTILE[kind]
    launch = f"/api/v1/workspaces/{ws['id']}/sessions"
    cases = [
        (alice, "POST", launch, '{"initial_prompt": @}', ["body", "initial_prompt"]),
        (alice, "POST", launch, '{"metadata": {"note": @}}', ["body", "metadata", "note"]),
        (
            alice,
            "POST",
            "/api/v1/user-sessions/import-claude-session",
            '{"workspace_id": "WS", "claude_session_id": "a11ce000-0000-4000-8000-000000000009", "messages": '
            '[{"role": "user", "content": {"type": "text", "text": "hi"}, "metadata": {"x": @}}]}'.replace(
                "WS", ws["id"]
            ),
            ["body", "messages", 0, "metadata", "x"],
        ),
        (alice, "POST", "/api/sessions", '{"agent_id": "CLAUDE_CODE", "prompt": @}', ["body", "prompt"]),
        (alice, "PATCH", f"/api/sessions/{sid}", '{"data": {"k": @}}', ["body", "data", "k"]),
        (alice, "POST", f"/api/sessions/{sid}/message", '{"content": @}', ["body", "content"]),
        (cp.admin, "POST", "/api/v1/workspaces", '{"name": @, "repository": "/srv/x"}', ["body", "name"]),
        (cp.admin, "POST", "/api/v1/tokens", '{"owner": @}', ["body", "owner"]),
    ]
    for client, method, path, template, loc in cases:
        r = await client.request(
            method, path, content=_body(template, value), headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (path, template, r.status_code, r.text)
        if kind != "too-deep":  # the nesting error names the array that is too deep, inside the field
            assert loc in _where(r), (path, r.json())
        else:
            assert any(w[: len(loc)] == loc for w in _where(r)), (path, r.json())

    # Nothing was written, and every read still answers.
    listing = (await alice.get("/api/sessions")).json()
    assert [s["id"] for s in listing["sessions"]] == [sid]
    s = await alice.get(f"/api/sessions/{sid}")
    assert s.status_code == 200 and s.json()["data"] == {} and s.json()["prompt"] is None
    assert len((await cp.admin.get("/api/v1/workspaces")).json()) == 1
    assert {t["owner"] for t in (await cp.admin.get("/api/v1/tokens")).json()} == {"admin", "alice"}
    assert fake.called("LaunchSession") == [] and fake.called("SendMessage") == []


async def test_offsets_seqs_and_last_event_id_past_64_bits_are_422(alice_env):
    alice, _ws, sid, _fake = alice_env
    huge = str(2**64)
    for path, params, loc in [
        ("/api/sessions", {"offset": huge}, ["query", "offset"]),
        (f"/api/sessions/{sid}/messages", {"offset": huge}, ["query", "offset"]),
        (f"/api/sessions/{sid}/messages", {"after_seq": huge}, ["query", "after_seq"]),
        (f"/api/sessions/{sid}/events", {"after_seq": huge}, ["query", "after_seq"]),
    ]:
        r = await alice.get(path, params=params)
        assert r.status_code == 422 and loc in _where(r), (path, r.text)
    r = await alice.get(f"/api/sessions/{sid}/events", headers={"Last-Event-ID": huge})
    assert r.status_code == 422 and ["header", "last-event-id"] in _where(r), r.text
    # The largest 64-bit offset itself is fine: an empty page.
    r = await alice.get("/api/sessions", params={"offset": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["sessions"] == []


async def test_imports_refuse_what_a_launch_could_not_resume(alice_env):
    alice, ws, _sid, fake = alice_env
    url = "/api/v1/user-sessions/import-claude-session"
    base = {"workspace_id": ws["id"], "claude_session_id": "a11ce000-0000-4000-8000-00000000000a"}
    deep: dict = {}
    for _ in range(40):
        deep = {"d": deep}
    for content, loc in [
        ({"type": "image", "text": "x"}, ["body", "messages", 0, "content", "type"]),
        ({"type": "tool_use", "tool_use_id": "t1", "arguments": {}}, ["body", "messages", 0, "content", "name"]),
        ({"type": "tool_use", "name": "Bash", "arguments": deep}, ["body", "messages", 0, "content", "arguments"]),
    ]:
        r = await alice.post(url, json={**base, "messages": [{"role": "assistant", "content": content}]})
        assert r.status_code == 422, (content, r.text)
        assert any(w[: len(loc)] == loc for w in _where(r)), (content, r.json())
    assert len((await alice.get("/api/sessions")).json()["sessions"]) == 1
    assert fake.called("ImportTranscript") == []


async def test_a_worktree_name_whose_directory_name_would_pass_255_bytes_is_422(alice_env):
    alice, ws, _sid, fake = alice_env
    name = "/".join(["ab"] * 66)  # 197 characters, but 262 once each '/' is written as '--'
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"worktree_name": name})
    assert r.status_code == 422 and ["body", "worktree_name"] in _where(r), r.text
    assert fake.called("LaunchSession") == []
    assert len((await alice.get("/api/sessions")).json()["sessions"]) == 1


def test_the_hostile_bodies_really_are_what_python_json_accepts():
    # The cases above are only meaningful if the standard parser lets them through.
    for value in HOSTILE.values():
        json.loads(value)
