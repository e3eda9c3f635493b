"""Imported conversations written as Claude Code session files."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.errors import InvalidArgument, NotFound
from daemon.transcripts import (
    IMPORTED_OPENING_TEXT,
    MISSING_RESULT_TEXT,
    build_claude_transcript,
    claude_project_dir,
    sanitize_project_path,
    write_claude_transcript,
)

SID = "3f0c9a56-8f7e-4a57-9a4f-5b1d1f6f2c11"
NOW = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def msg(role: str, ctype: str = "text", **content) -> dict:
    return {
        "message_id": uuid.uuid4().hex,
        "role": role,
        "content": {"type": ctype, **content},
        "metadata": {},
    }


def text(role: str, value: str) -> dict:
    return msg(role, "text", text=value)


def tool_use(tid: str, name: str = "Bash", **arguments) -> dict:
    return msg("assistant", "tool_use", tool_use_id=tid, name=name, arguments=arguments)


def tool_result(tid: str, output, **extra) -> dict:
    return msg("tool", "tool_result", tool_use_id=tid, output=output, **extra)


def bodies(lines: list[dict]) -> list[tuple[str, list[dict]]]:
    return [(line["message"]["role"], line["message"]["content"]) for line in lines]


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "work tree" / "feature.x"
    path.mkdir(parents=True)
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_lives_under_config_dir_projects_sanitized_realpath(worktree: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    path = write_claude_transcript(worktree, SID, [text("user", "hi")], config_dir=config)
    expected_dir = re.sub(r"[^A-Za-z0-9]", "-", os.path.realpath(worktree))
    assert expected_dir.endswith("-work-tree-feature-x")
    assert path == config / "projects" / expected_dir / f"{SID}.jsonl"
    assert path.exists()
    assert claude_project_dir(worktree, config) == path.parent


def test_symlinked_worktree_uses_its_real_path(worktree: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(worktree)
    path = write_claude_transcript(link, SID, [text("user", "hi")], config_dir=tmp_path / "cfg")
    assert path.parent.name == sanitize_project_path(os.path.realpath(worktree))
    assert read_lines(path)[0]["cwd"] == os.path.realpath(worktree)


def test_config_dir_defaults_to_env_then_home(worktree: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "from-env"))
    path = write_claude_transcript(worktree, SID, [text("user", "hi")])
    assert path.is_relative_to(tmp_path / "from-env" / "projects")
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_claude_transcript(worktree, SID, [text("user", "hi")])
    assert path.is_relative_to(tmp_path / "home" / ".claude" / "projects")


def test_sanitize_replaces_every_non_alphanumeric_character() -> None:
    assert sanitize_project_path("/home/me/my_repo.git/wt-1") == "-home-me-my-repo-git-wt-1"
    assert sanitize_project_path("/tmp/é") == "-tmp--"
    assert sanitize_project_path("/tmp/🚀") == "-tmp---"  # one '-' per UTF-16 code unit, like claude


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_sanitize_matches_claude_javascript_including_long_paths() -> None:
    # The same function claude 2.1.x uses, run by node.
    js = r"""
    const vte = (t) => { let e = 0;
                         for (let n = 0; n < t.length; n++) e = (e << 5) - e + t.charCodeAt(n) | 0;
                         return e; };
    const rL = (e) => { const n = e.replace(/[^a-zA-Z0-9]/g, "-"); if (n.length <= 200) return n;
                        return `${n.slice(0, 200)}-${Math.abs(vte(e)).toString(36)}`; };
    const paths = JSON.parse(require("fs").readFileSync(0, "utf8"));
    process.stdout.write(JSON.stringify(paths.map(rL)));
    """
    paths = [
        "/short/path",
        "/" + "long-directory-name/" * 15 + "end",
        "/" + "é" * 250,
        "/x/" + "🚀" * 120,
        "/" + "Zz9" * 90,
    ]
    out = subprocess.run(["node", "-e", js], input=json.dumps(paths), capture_output=True, text=True, check=True)
    assert [sanitize_project_path(p) for p in paths] == json.loads(out.stdout)


def test_every_line_has_claude_session_fields_and_chains_by_parent_uuid(worktree: Path, tmp_path: Path) -> None:
    messages = [text("user", "first"), text("assistant", "second"), text("user", "third")]
    path = write_claude_transcript(worktree, SID, messages, config_dir=tmp_path / "c", now=NOW, git_branch="feat")
    raw = path.read_text(encoding="utf-8").splitlines()
    lines = [json.loads(line) for line in raw]
    assert len(lines) == 3
    for line_text, line in zip(raw, lines, strict=True):
        assert line_text == json.dumps(line, ensure_ascii=False, separators=(",", ":"))  # compact, one per line
        assert line["sessionId"] == SID == path.stem
        assert line["cwd"] == os.path.realpath(worktree)
        assert line["isSidechain"] is False
        assert line["userType"] == "external"
        assert line["type"] == line["message"]["role"]
        assert line["version"]
        assert line["gitBranch"] == "feat"
        assert line["timestamp"].endswith("Z")
        uuid.UUID(line["uuid"])
    assert lines[0]["parentUuid"] is None
    assert [line["parentUuid"] for line in lines[1:]] == [line["uuid"] for line in lines[:-1]]
    assert len({line["uuid"] for line in lines}) == 3


def test_text_messages_map_to_text_blocks(worktree: Path) -> None:
    lines = build_claude_transcript(worktree, SID, [text("user", "hello"), text("assistant", "hi there")])
    assert bodies(lines) == [
        ("user", [{"type": "text", "text": "hello"}]),
        ("assistant", [{"type": "text", "text": "hi there"}]),
    ]


def test_assistant_lines_carry_api_message_fields(worktree: Path) -> None:
    messages = [text("user", "q"), {**text("assistant", "a"), "metadata": {"model": "claude-sonnet-4-5"}}]
    line = build_claude_transcript(worktree, SID, messages)[1]
    body = line["message"]
    assert body["type"] == "message"
    assert body["id"].startswith("msg_")
    assert body["model"] == "claude-sonnet-4-5"
    assert body["stop_reason"] == "end_turn"
    assert body["stop_sequence"] is None
    assert set(body["usage"]) >= {"input_tokens", "output_tokens"}
    other = build_claude_transcript(worktree, SID, [text("user", "q"), text("assistant", "a")], model="m-default")
    assert other[1]["message"]["model"] == "m-default"


def test_consecutive_blocks_of_one_side_merge_into_one_message(worktree: Path) -> None:
    messages = [text("user", "a"), text("user", "b"), text("assistant", "c"), text("assistant", "d")]
    assert bodies(build_claude_transcript(worktree, SID, messages)) == [
        ("user", [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),
        ("assistant", [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]),
    ]


def test_tool_use_and_result_map_to_paired_blocks(worktree: Path) -> None:
    messages = [
        text("user", "list files"),
        text("assistant", "Let me look."),
        tool_use("toolu_1", "Bash", command="ls"),
        tool_result("toolu_1", "a.txt\nb.txt", success=True),
        text("assistant", "Two files."),
    ]
    lines = build_claude_transcript(worktree, SID, messages)
    assert bodies(lines) == [
        ("user", [{"type": "text", "text": "list files"}]),
        (
            "assistant",
            [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
            ],
        ),
        (
            "user",
            [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt", "is_error": False}],
        ),
        ("assistant", [{"type": "text", "text": "Two files."}]),
    ]
    assert lines[1]["message"]["stop_reason"] == "tool_use"


def test_tool_result_errors_and_structured_output(worktree: Path) -> None:
    messages = [
        tool_use("t1"),
        tool_use("t2"),
        tool_use("t3"),
        tool_result("t1", {"exit": 1}, is_error=True),
        tool_result("t2", "boom", success=False),
        tool_result("t3", None),
    ]
    results = build_claude_transcript(worktree, SID, [text("user", "go"), *messages])[2]["message"]["content"]
    assert results == [
        {"type": "tool_result", "tool_use_id": "t1", "content": '{"exit": 1}', "is_error": True},
        {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True},
        {"type": "tool_result", "tool_use_id": "t3", "content": "", "is_error": False},
    ]


def test_tool_use_without_result_gets_a_synthetic_error_result(worktree: Path) -> None:
    messages = [text("user", "go"), tool_use("t1"), text("user", "never mind"), tool_use("t2")]
    lines = build_claude_transcript(worktree, SID, messages)
    assert bodies(lines) == [
        ("user", [{"type": "text", "text": "go"}]),
        ("assistant", [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]),
        (
            "user",
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": MISSING_RESULT_TEXT,
                    "is_error": True,
                },
                {"type": "text", "text": "never mind"},
            ],
        ),
        ("assistant", [{"type": "tool_use", "id": "t2", "name": "Bash", "input": {}}]),
        (
            "user",
            [{"type": "tool_result", "tool_use_id": "t2", "content": MISSING_RESULT_TEXT, "is_error": True}],
        ),
    ]


def test_results_come_before_text_in_the_user_message(worktree: Path) -> None:
    messages = [text("user", "go"), tool_use("t1"), text("user", "also this"), tool_result("t1", "done")]
    user = build_claude_transcript(worktree, SID, messages)[2]["message"]["content"]
    assert [b["type"] for b in user] == ["tool_result", "text"]
    assert user[0]["content"] == "done"


def test_orphan_and_late_tool_results_are_dropped(worktree: Path) -> None:
    messages = [
        text("user", "go"),
        tool_result("nobody", "orphan"),
        tool_use("t1"),
        tool_result("t1", "ok"),
        text("assistant", "next"),
        tool_result("t1", "duplicate, too late"),
        msg("tool", "tool_result", output="no id"),
    ]
    lines = build_claude_transcript(worktree, SID, messages)
    all_results = [b for _, blocks in bodies(lines) for b in blocks if b["type"] == "tool_result"]
    assert all_results == [{"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": False}]


def test_duplicate_tool_use_ids_keep_the_first(worktree: Path) -> None:
    messages = [text("user", "go"), tool_use("t1", "Bash"), tool_use("t1", "Read"), tool_result("t1", "x")]
    lines = build_claude_transcript(worktree, SID, messages)
    assert lines[1]["message"]["content"] == [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]


def test_tool_use_without_id_gets_one_and_a_missing_result(worktree: Path) -> None:
    messages = [text("user", "go"), msg("assistant", "tool_use", name="Bash", arguments=None)]
    lines = build_claude_transcript(worktree, SID, messages)
    block = lines[1]["message"]["content"][0]
    assert block["id"] and block["input"] == {}
    assert lines[2]["message"]["content"][0]["tool_use_id"] == block["id"]


def test_system_and_error_messages_and_empty_text_are_skipped(worktree: Path) -> None:
    messages = [
        msg("system", "text", text="system prompt"),
        text("user", "hi"),
        msg("assistant", "error", message="rate limited"),
        msg("system", "system", text="init"),
        text("assistant", ""),
        text("tool", "stray tool text"),
        text("assistant", "hello"),
    ]
    assert bodies(build_claude_transcript(worktree, SID, messages)) == [
        ("user", [{"type": "text", "text": "hi"}]),
        ("assistant", [{"type": "text", "text": "hello"}]),
    ]


def test_conversation_opening_with_the_assistant_gets_a_user_turn_first(worktree: Path) -> None:
    messages = [msg("system", "text", text="sys"), text("assistant", "Hello."), text("user", "hi")]
    assert bodies(build_claude_transcript(worktree, SID, messages)) == [
        ("user", [{"type": "text", "text": IMPORTED_OPENING_TEXT}]),
        ("assistant", [{"type": "text", "text": "Hello."}]),
        ("user", [{"type": "text", "text": "hi"}]),
    ]


def test_timestamps_come_from_created_at_or_now(worktree: Path) -> None:
    messages = [
        {**text("user", "a"), "created_at": "2024-05-06T07:08:09.5+02:00"},
        {**text("assistant", "b"), "created_at": "not a date"},
        text("user", "c"),
    ]
    lines = build_claude_transcript(worktree, SID, messages, now=NOW)
    assert lines[0]["timestamp"] == "2024-05-06T05:08:09.500Z"
    assert lines[1]["timestamp"] == "2025-03-04T05:06:07.124Z"
    assert lines[2]["timestamp"] == "2025-03-04T05:06:07.125Z"


def test_output_is_deterministic_for_the_same_input(worktree: Path) -> None:
    messages = [text("user", "a"), tool_use("t"), tool_result("t", "r")]
    assert build_claude_transcript(worktree, SID, messages, now=NOW) == build_claude_transcript(
        worktree, SID, messages, now=NOW
    )


def test_empty_conversation_writes_an_empty_file(worktree: Path, tmp_path: Path) -> None:
    path = write_claude_transcript(worktree, SID, [], config_dir=tmp_path / "c")
    assert path.read_text() == ""


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([text("user", "ok"), text("robot", "x")], "messages[1].role"),
        ([{"role": None, "content": {"type": "text", "text": "x"}}], "messages[0].role"),
        (["not an object"], "messages[0]"),
        ([msg("user", "image")], "messages[0].content.type"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
        (
            [text("user", "ok"), msg("assistant", "tool_use", name="Bash", arguments=[1])],
            "messages[1].content.arguments",
        ),
        ([msg("assistant", "tool_use", arguments={})], "messages[0].content.name"),
        ([msg("user", "text", text=7)], "messages[0].content.text"),
    ],
)
def test_invalid_messages_name_the_field_and_write_nothing(
    worktree: Path, tmp_path: Path, messages: list, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        write_claude_transcript(worktree, SID, messages, config_dir=tmp_path / "c")
    assert info.value.field == field
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("bad", ["", "../escape", "a/b", ".hidden", "x" * 129])
def test_unsafe_session_id_is_invalid_argument(worktree: Path, tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        write_claude_transcript(worktree, bad, [text("user", "x")], config_dir=tmp_path / "c")
    assert info.value.field == "provider_session_id"
    assert not (tmp_path / "c").exists()


def test_missing_worktree_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        write_claude_transcript(tmp_path / "nope", SID, [text("user", "x")], config_dir=tmp_path / "c")


def test_rewrite_replaces_file_atomically_without_leftovers(worktree: Path, tmp_path: Path) -> None:
    config = tmp_path / "c"
    first = write_claude_transcript(worktree, SID, [text("user", "one")], config_dir=config)
    second = write_claude_transcript(
        worktree, SID, [text("user", "two"), text("assistant", "three")], config_dir=config
    )
    assert first == second
    assert [line["message"]["content"][0]["text"] for line in read_lines(second)] == ["two", "three"]
    assert sorted(p.name for p in second.parent.iterdir()) == [f"{SID}.jsonl"]
    assert stat.S_IMODE(second.stat().st_mode) == 0o600


def test_non_ascii_text_is_written_as_utf8(worktree: Path, tmp_path: Path) -> None:
    path = write_claude_transcript(worktree, SID, [text("user", "héllo 🚀 日本")], config_dir=tmp_path / "c")
    assert "héllo 🚀 日本" in path.read_text(encoding="utf-8")
    assert read_lines(path)[0]["message"]["content"][0]["text"] == "héllo 🚀 日本"


@pytest.mark.skipif(
    not Path(__file__).resolve().parents[2].joinpath("node_modules/.bin/claude").exists(),
    reason="pinned claude CLI not installed",
)
def test_real_claude_resumes_the_written_session_with_its_history(
    worktree: Path, model_server, claude_provider
) -> None:
    """The pinned claude, started with --resume, sends the imported turns to the model."""
    session_id = str(uuid.uuid4())
    messages = [
        text("user", "Remember the secret word PAPAYA"),
        tool_use("toolu_import_1", "Bash", command="ls"),
        tool_result("toolu_import_1", "notes.txt"),
        text("assistant", "Noted: PAPAYA."),
        tool_use("toolu_import_2", "Read", file_path="/nowhere"),
    ]
    config_dir = Path(claude_provider.env["CLAUDE_CONFIG_DIR"])
    write_claude_transcript(worktree, session_id, messages, config_dir=config_dir)
    model_server.script("what was the word", text="It was PAPAYA.")
    result = subprocess.run(
        [
            claude_provider.binary,
            "-p",
            "what was the word?",
            "--resume",
            session_id,
            "--output-format",
            "json",
        ],
        check=False,
        cwd=worktree,
        env={**os.environ, **claude_provider.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["result"] == "It was PAPAYA."
    sent = model_server.turn_requests("anthropic")[-1].body["messages"]
    flat = [
        (m["role"], b.get("type"), b.get("text") or b.get("content") or b.get("name"))
        for m in sent
        if m["role"] in ("user", "assistant") and isinstance(m["content"], list)
        for b in m["content"]
    ]
    assert ("user", "text", "Remember the secret word PAPAYA") in flat
    assert ("assistant", "tool_use", "Bash") in flat
    assert ("user", "tool_result", "notes.txt") in flat
    assert ("assistant", "text", "Noted: PAPAYA.") in flat
    assert ("user", "tool_result", MISSING_RESULT_TEXT) in flat
    # claude appended the new turn to the same session file.
    lines = read_lines(claude_project_dir(worktree, config_dir) / f"{session_id}.jsonl")
    assert any(line.get("type") == "assistant" and "It was PAPAYA." in json.dumps(line) for line in lines)
