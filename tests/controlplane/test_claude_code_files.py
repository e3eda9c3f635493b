"""Claude Code's own session files over REST: imported as they are (application/x-ndjson), and sessions
exported back as one (GET /api/sessions/{id}/export?format=claude-code)."""

from __future__ import annotations

import json

from tests.claude_sessions.test_read import SID, FileBuilder

IMPORT = "/api/v1/user-sessions/import-claude-session"
NDJSON = {"Content-Type": "application/x-ndjson"}


def _claude_file() -> bytes:
    f = FileBuilder()
    f.raw({"type": "queue-operation", "operation": "enqueue", "sessionId": SID})
    f.add("user", "please run ls")
    f.add(
        "assistant",
        [
            {"type": "thinking", "thinking": "easy", "signature": "s"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
        ],
    )
    f.add("user", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "README.md"}])
    f.add("assistant", [{"type": "text", "text": "There is a README."}], isSidechain=True)
    f.add("assistant", [{"type": "text", "text": "Only README.md."}])
    return ("\n".join(f.text()) + "\n").encode()


async def test_a_claude_code_file_imports_as_it_is_with_what_was_left_counted(cp):
    alice = await cp.owner("alice")
    ws = await cp.workspace("/srv/repo", "alice", None)

    r = await alice.post(
        IMPORT, params={"workspace_id": ws["id"], "session_name": "laptop"}, content=_claude_file(), headers=NDJSON
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] and body["message_count"] == 4
    assert body["claude_code_file"] == {
        "lines_skipped": {"queue-operation": 1, "sidechain": 1},
        "blocks_kept_as_metadata": {"thinking": 1},
    }
    s = (await alice.get(f"/api/sessions/{body['agent_session_id']}")).json()
    assert s["provider_session_id"] == SID and s["agent_id"] == "CLAUDE_CODE"
    msgs = (await alice.get(f"/api/sessions/{body['agent_session_id']}/messages")).json()["messages"]
    assert [(m["role"], m["content"]["type"]) for m in msgs] == [
        ("user", "text"),
        ("assistant", "tool_use"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    # The thinking block rides along in the metadata of the message made from its line.
    assert msgs[1]["metadata"]["claude_code_blocks"][0]["thinking"] == "easy"
    assert msgs[2]["content"]["output"] == "README.md"

    # The seed's JSON form answers as before: no file report.
    r = await alice.post(
        IMPORT, json={"workspace_id": ws["id"], "claude_session_id": SID.replace("7", "8"), "messages": []}
    )
    assert r.status_code == 200 and r.json()["claude_code_file"] is None


async def test_file_form_errors_name_the_line_or_parameter_and_store_nothing(cp):
    alice = await cp.owner("alice")
    ws = await cp.workspace("/srv/repo", "alice", None)
    good = _claude_file()
    cases = [
        ({}, good, ["query", "workspace_id"]),
        ({"workspace_id": ws["id"], "messages": "x"}, good, ["query", "messages"]),
        ({"workspace_id": ws["id"]}, good + b"{oops\n", ["body", "line 7"]),
        ({"workspace_id": ws["id"]}, b"\xff\xfe", ["body"]),
        (
            {"workspace_id": ws["id"]},
            b'{"type": "user", "message": {"content": "hi"}}\n',
            ["query", "claude_session_id"],
        ),
        ({"workspace_id": ws["id"], "claude_session_id": "not-a-uuid"}, good, ["body", "claude_session_id"]),
        ({"workspace_id": ws["id"], "worktree_name": "--force"}, good, ["body", "worktree_name"]),
    ]
    for params, content, loc in cases:
        r = await alice.post(IMPORT, params=params, content=content, headers=NDJSON)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["detail"][0]["loc"][: len(loc)] == loc, (params, r.text)
    r = await alice.post(IMPORT, params={"workspace_id": "ws-not-mine"}, content=good, headers=NDJSON)
    assert r.status_code == 404
    assert (await alice.get("/api/sessions")).json()["total"] == 0


async def test_export_writes_a_claude_code_file_with_every_tool_call_answered(cp):
    alice = await cp.owner("alice")
    bob = await cp.owner("bob")
    ws = await cp.workspace("/srv/repo", "alice", None)
    sid = (await alice.post(IMPORT, params={"workspace_id": ws["id"]}, content=_claude_file(), headers=NDJSON)).json()[
        "agent_session_id"
    ]

    r = await alice.get(f"/api/sessions/{sid}/export", params={"format": "claude-code", "cwd": "/home/me/elsewhere"})

    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["berth-claude-session-id"] == SID
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [line["type"] for line in lines] == ["user", "assistant", "user", "assistant"]
    assert all(line["sessionId"] == SID and line["cwd"] == "/home/me/elsewhere" for line in lines)
    assert [line["parentUuid"] for line in lines] == [None] + [line["uuid"] for line in lines[:-1]]
    tool_use = lines[1]["message"]["content"][0]
    assert tool_use == {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
    assert lines[2]["message"]["content"][0]["tool_use_id"] == "toolu_1"
    assert lines[3]["message"]["content"] == [{"type": "text", "text": "Only README.md."}]

    assert (await bob.get(f"/api/sessions/{sid}/export")).status_code == 404
    r = await alice.get(f"/api/sessions/{sid}/export", params={"format": "markdown"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "format"]
    r = await alice.get(f"/api/sessions/{sid}/export", params={"cwd": "relative/dir"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cwd"]
