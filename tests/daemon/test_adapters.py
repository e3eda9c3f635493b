"""Pure unit tests of the agent adapters: argv, env, stdin encoding and parse_line on real
lines captured from claude 2.1.328 and codex 0.169.0 (shortened where they are long)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.agents import ClaudeCodeAdapter, CodexAdapter, TurnSpec, adapter_for
from daemon.config import ProviderConfig
from daemon.errors import FailedPrecondition, InvalidArgument

SID = "6a910e96-d540-4a6b-82ee-9b8190d22389"
TID = "01a2090c-41da-7341-b4b7-cdc2f09c8f42"

CLAUDE_INIT = json.dumps({
    "type": "system", "subtype": "init", "cwd": "/tmp/repo", "session_id": SID, "tools": ["Bash", "Write"],
    "mcp_servers": [], "model": "claude-opus-5-5", "permissionMode": "acceptEdits",
    "apiKeySource": "ANTHROPIC_API_KEY", "claude_code_version": "2.1.328", "uuid": "fb75ac12"})
CLAUDE_TOOL_USE = (
    '{"type":"assistant","message":{"id":"msg_1df5a687d6d1444bb34a741f","type":"message","role":"assistant",'
    '"model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_2ee4a04859fa4565b95c","name":"Write",'
    '"input":{"file_path":"/tmp/repo/hello.txt","content":"hi there"}}],"stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},'
    '"context_management":null},"parent_tool_use_id":null,"session_id":"' + SID + '",'
    '"uuid":"450d1b90-51a9-403a-9a6a-08eb2541ad8e","timestamp":"2026-11-23T15:35:26.590Z"}')
CLAUDE_TOOL_RESULT = (
    '{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_2ee4a04859fa4565b95c",'
    '"type":"tool_result","content":"File created successfully at: /tmp/repo/hello.txt"}]},'
    '"parent_tool_use_id":null,"session_id":"' + SID + '","uuid":"79f6bf5b","timestamp":"2026-11-23T15:35:26.637Z",'
    '"tool_use_result":{"type":"create","filePath":"/tmp/repo/hello.txt","content":"hi there"}}')
CLAUDE_TEXT = (
    '{"type":"assistant","message":{"id":"msg_f47b4c344dee45e08f5f6528","type":"message","role":"assistant",'
    '"model":"claude-opus-5-5","content":[{"type":"text","text":"done writing"}],"stop_reason":null,'
    '"usage":{"input_tokens":12,"output_tokens":1}},"parent_tool_use_id":null,"session_id":"' + SID + '"}')
CLAUDE_RESULT = (
    '{"duration_api_ms":51,"stop_reason":"end_turn","session_id":"' + SID + '","total_cost_usd":0.000376,'
    '"usage":{"input_tokens":24,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":14},'
    '"permission_denials":[],"terminal_reason":"completed","is_error":false,"num_turns":2,"subtype":"success",'
    '"result":"done writing","type":"result","duration_ms":220}')
CLAUDE_INTERRUPTED_NOTE = (
    '{"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user]"}]},'
    '"parent_tool_use_id":null,"session_id":"' + SID + '"}')
CLAUDE_INTERRUPTED_RESULT = (
    '{"duration_api_ms":0,"stop_reason":null,"session_id":"' + SID + '","total_cost_usd":0.000068,'
    '"usage":{"input_tokens":0,"output_tokens":0},"terminal_reason":"aborted_streaming","is_error":true,'
    '"num_turns":2,"subtype":"error_during_execution",'
    '"errors":["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],"type":"result"}')
CLAUDE_API_RETRY = (
    '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":552,"error_status":500,'
    '"error":"server_error","session_id":"' + SID + '","uuid":"e07dc931"}')
CLAUDE_CONTROL_RESPONSE = (
    '{"type":"control_response","response":{"subtype":"success","request_id":"req_1",'
    '"response":{"still_queued":[]}}}')

CODEX_THREAD = '{"type":"thread.started","thread_id":"' + TID + '"}'
CODEX_TURN_STARTED = '{"type":"turn.started"}'
CODEX_CMD_STARTED = (
    '{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"/bin/bash -c '
    '\\"printf %s \'hi there\' > /tmp/repo/hello.txt\\"","aggregated_output":"","exit_code":null,'
    '"status":"in_progress"}}')
CODEX_CMD_DONE = (
    '{"type":"item.completed","item":{"id":"item_0","type":"command_execution","command":"/bin/bash -c '
    '\\"printf %s \'hi there\' > /tmp/repo/hello.txt\\"","aggregated_output":"","exit_code":0,'
    '"status":"completed"}}')
CODEX_MESSAGE = '{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"done writing"}}'
CODEX_TURN_DONE = (
    '{"type":"turn.completed","usage":{"input_tokens":42,"cached_input_tokens":0,"cache_write_input_tokens":0,'
    '"output_tokens":18,"reasoning_output_tokens":0}}')
CODEX_ERROR = '{"type":"error","message":"We\u2019re currently experiencing high demand."}'
CODEX_TURN_FAILED = '{"type":"turn.failed","error":{"message":"We\u2019re currently experiencing high demand."}}'
CODEX_ITEM_ERROR = (
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Code Mode is unavailable."}}')


def claude(**kw) -> ClaudeCodeAdapter:
    return ClaudeCodeAdapter(ProviderConfig(name="claude_code", binary="/bin/true", **kw))


def codex(**kw) -> CodexAdapter:
    return CodexAdapter(ProviderConfig(name="codex", binary="/bin/true", **kw))


def parse(adapter, line: str):
    return adapter.parse_line(line.encode())


# -- claude ---------------------------------------------------------------------------------------


def test_claude_init_announces_the_session_once():
    a = claude()
    (ev,) = parse(a, CLAUDE_INIT)
    assert ev.role == "system" and ev.provider_session_id == SID
    assert ev.metadata["model"] == "claude-opus-5-5" and ev.metadata["raw_type"] == "system/init"
    assert parse(a, CLAUDE_INIT) == []  # repeated at every turn


def test_claude_tool_use_becomes_an_assistant_tool_use_event():
    (ev,) = parse(claude(), CLAUDE_TOOL_USE)
    assert ev.role == "assistant"
    assert ev.content == {"type": "tool_use", "name": "Write", "tool_use_id": "toolu_2ee4a04859fa4565b95c",
                          "arguments": {"file_path": "/tmp/repo/hello.txt", "content": "hi there"}}
    assert ev.provider_session_id == SID and ev.metadata["usage"]["input_tokens"] == 12


def test_claude_tool_result_becomes_a_tool_role_event():
    (ev,) = parse(claude(), CLAUDE_TOOL_RESULT)
    assert ev.role == "tool"
    assert ev.content == {"type": "tool_result", "tool_use_id": "toolu_2ee4a04859fa4565b95c",
                          "output": "File created successfully at: /tmp/repo/hello.txt", "is_error": False,
                          "success": True}


def test_claude_tool_result_error_and_block_list_output():
    line = json.dumps({"type": "user", "session_id": SID, "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
         "content": [{"type": "text", "text": "boom "}, {"type": "text", "text": "again"}]}]}})
    (ev,) = parse(claude(), line)
    assert ev.content["output"] == "boom again" and ev.content["is_error"] is True and ev.content["success"] is False


def test_claude_text_and_result_end_the_turn_with_usage_and_cost():
    a = claude()
    (text,) = parse(a, CLAUDE_TEXT)
    assert (text.role, text.content) == ("assistant", {"type": "text", "text": "done writing"})
    (done,) = parse(a, CLAUDE_RESULT)
    assert done.turn_complete and done.turn_error is None
    assert done.metadata["usage"]["output_tokens"] == 14 and done.metadata["total_cost_usd"] == 0.000376
    assert done.content == {"type": "system", "message": "turn completed"}


def test_claude_interrupted_turn_ends_with_an_interrupted_error():
    a = claude()
    (note,) = parse(a, CLAUDE_INTERRUPTED_NOTE)
    assert note.role == "system" and note.content["message"] == "[Request interrupted by user]"
    (done,) = parse(a, CLAUDE_INTERRUPTED_RESULT)
    assert done.turn_complete and done.turn_error == "interrupted"
    assert done.content == {"type": "error", "message": "interrupted"}
    assert done.metadata["errors"][0].startswith("[ede_diagnostic]")


def test_claude_failed_result_carries_its_error_text():
    line = json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": True, "session_id": SID,
                       "errors": ["max turns reached"]})
    (done,) = parse(claude(), line)
    assert done.turn_complete and done.turn_error == "max turns reached"


def test_claude_api_retry_is_a_system_error_and_control_response_is_ignored():
    (retry,) = parse(claude(), CLAUDE_API_RETRY)
    assert retry.role == "system" and retry.content["type"] == "error" and "1/10" in retry.content["message"]
    assert not retry.turn_complete
    assert parse(claude(), CLAUDE_CONTROL_RESPONSE) == []


@pytest.mark.parametrize("junk", [b"not json at all", b"[1, 2]", b'{"type":"assistant","message":"oops"}'])
def test_claude_junk_lines_become_error_events_not_exceptions(junk):
    (ev,) = claude().parse_line(junk)
    assert ev.role == "system" and ev.content["type"] == "error" and not ev.turn_complete


def test_claude_blank_line_gives_nothing():
    assert claude().parse_line(b"  \n") == []


def test_claude_argv_with_model_resume_and_extra_args():
    a = claude(args=["--max-turns", "5"], default_model="claude-x")
    argv = a.argv(TurnSpec(cwd=Path("/tmp"), model="", resume_id=TID))
    assert argv == ["/bin/true", "-p", "--input-format", "stream-json", "--output-format", "stream-json",
                    "--verbose", "--model=claude-x", f"--resume={TID}", "--permission-mode", "acceptEdits",
                    "--max-turns", "5"]
    assert a.assigned_session_id == TID
    fresh = claude(args=["--permission-mode", "plan"])
    own = fresh.argv(TurnSpec(cwd=Path("/tmp"), model="m"))
    assert f"--session-id={fresh.assigned_session_id}" in own and not any(w.startswith("--resume") for w in own)
    assert own.count("--permission-mode") == 1 and own[-2:] == ["--permission-mode", "plan"]
    assert "--model=m" in own


@pytest.mark.parametrize("adapter", [claude, codex])
@pytest.mark.parametrize("field,spec", [
    ("resume_session_id", {"resume_id": "--dangerously-skip-permissions"}),
    ("resume_session_id", {"resume_id": "--dangerously-bypass-approvals-and-sandbox"}),
    ("resume_session_id", {"resume_id": "not-a-uuid"}),
    ("model", {"model": "--dangerously-skip-permissions"}),
    ("model", {"model": "-x"}),
])
def test_a_caller_value_that_would_read_as_an_option_never_reaches_argv(adapter, field, spec):
    with pytest.raises(InvalidArgument) as info:
        adapter().argv(TurnSpec(cwd=Path("/tmp"), prompt="p", **spec))
    assert info.value.field == field


def test_claude_stdin_encoding_and_interrupt_request():
    a = claude()
    assert json.loads(a.encode_message("hi\nthere")) == {"type": "user",
                                                         "message": {"role": "user", "content": "hi\nthere"}}
    assert a.encode_message("x").endswith(b"\n") and a.encode_message("x").count(b"\n") == 1
    req = json.loads(a.interrupt_bytes())
    assert req["type"] == "control_request" and req["request"] == {"subtype": "interrupt"} and req["request_id"]


def test_env_adds_provider_env_over_the_base():
    a = claude(env={"ANTHROPIC_BASE_URL": "http://x", "HOME": "/h"})
    assert a.env({"HOME": "/root", "PATH": "/bin"}) == {"HOME": "/h", "PATH": "/bin",
                                                         "ANTHROPIC_BASE_URL": "http://x"}


# -- codex ----------------------------------------------------------------------------------------


def test_codex_full_turn_of_real_lines():
    a = codex()
    events = [ev for line in (CODEX_THREAD, CODEX_TURN_STARTED, CODEX_CMD_STARTED, CODEX_CMD_DONE, CODEX_MESSAGE,
                              CODEX_TURN_DONE) for ev in parse(a, line)]
    assert [(e.role, e.content["type"]) for e in events] == [
        ("system", "system"), ("assistant", "tool_use"), ("tool", "tool_result"), ("assistant", "text"),
        ("system", "system")]
    started, use, result, text, done = events
    assert started.provider_session_id == TID
    assert use.content["name"] == "command_execution" and "hello.txt" in use.content["arguments"]["command"]
    assert result.content["tool_use_id"] == use.content["tool_use_id"]
    assert result.content["success"] is True and result.content["output"] == "" and result.metadata["exit_code"] == 0
    assert text.content["text"] == "done writing"
    assert done.turn_complete and done.turn_error is None and done.metadata["usage"]["output_tokens"] == 18


def test_codex_tool_ids_differ_between_turns_and_thread_is_announced_once():
    a = codex()
    first = [e for line in (CODEX_THREAD, CODEX_TURN_STARTED, CODEX_CMD_STARTED) for e in parse(a, line)]
    second = [e for line in (CODEX_THREAD, CODEX_TURN_STARTED, CODEX_CMD_STARTED) for e in parse(a, line)]
    assert len(first) == 2 and len(second) == 1  # no second "session started"
    assert first[1].content["tool_use_id"] != second[0].content["tool_use_id"]


def test_codex_failed_command_is_an_error_result_even_without_a_started_line():
    line = json.dumps({"type": "item.completed", "item": {"id": "item_3", "type": "command_execution",
                                                          "command": "false", "aggregated_output": "nope",
                                                          "exit_code": 1, "status": "failed"}})
    use, result = parse(codex(), line)
    assert use.content["type"] == "tool_use"
    assert result.content == {"type": "tool_result", "tool_use_id": use.content["tool_use_id"], "output": "nope",
                              "is_error": True, "success": False}


def test_codex_file_change_becomes_tool_use_and_result():
    changes = [{"path": "/tmp/repo/a.txt", "kind": "add"}]
    line = json.dumps({"type": "item.completed", "item": {"id": "item_1", "type": "file_change",
                                                          "changes": changes, "status": "completed"}})
    use, result = parse(codex(), line)
    assert use.content["name"] == "file_change" and use.content["arguments"] == {"changes": changes}
    assert result.content["success"] is True and result.content["output"]["changes"] == changes


def test_codex_errors_and_failed_turn():
    a = codex()
    (err,) = parse(a, CODEX_ERROR)
    assert err.role == "system" and err.content["type"] == "error" and not err.turn_complete
    (failed,) = parse(a, CODEX_TURN_FAILED)
    assert failed.turn_complete and failed.turn_error.startswith("We\u2019re currently")
    (item_err,) = parse(a, CODEX_ITEM_ERROR)
    assert item_err.content == {"type": "error", "message": "Code Mode is unavailable."}


def test_codex_reasoning_and_unknown_lines_are_skipped():
    a = codex()
    assert parse(a, '{"type":"item.completed","item":{"id":"i","type":"reasoning","text":"hmm"}}') == []
    assert parse(a, '{"type":"something.new"}') == []
    (junk,) = a.parse_line(b"Reading additional input from stdin...")
    assert junk.content["type"] == "error"


def test_codex_argv_first_turn_and_resume():
    a = codex(args=["-c", "x=1"])
    first = a.argv(TurnSpec(cwd=Path("/tmp"), model="gpt-x", thinking="high", prompt="-starts with dash"))
    assert first == ["/bin/true", "exec", "--json", "--skip-git-repo-check", "-c", 'sandbox_mode="workspace-write"',
                     "-c", 'approval_policy="never"', "--model=gpt-x", "-c", 'model_reasoning_effort="high"',
                     "-c", "x=1", "--", "-starts with dash"]
    resumed = a.argv(TurnSpec(cwd=Path("/tmp"), resume_id=TID, prompt="again"))
    assert resumed[-4:] == ["resume", TID, "--", "again"] and not any(w.startswith("--model") for w in resumed)


def test_codex_argv_keeps_a_configured_sandbox_choice():
    argv = codex(args=["--dangerously-bypass-approvals-and-sandbox"]).argv(TurnSpec(cwd=Path("/"), prompt="p"))
    assert not any("sandbox_mode" in a for a in argv)
    assert codex().persistent is False and claude().persistent is True
    assert codex().interrupt_bytes() is None


# -- adapter_for / binaries -----------------------------------------------------------------------


def test_adapter_for_unknown_provider_names_the_field():
    with pytest.raises(InvalidArgument) as info:
        adapter_for("gemini", ProviderConfig(name="gemini", binary="x"))
    assert info.value.field == "session_settings.code.default_provider" and "gemini" in str(info.value)


def test_adapter_for_known_providers():
    assert isinstance(adapter_for("claude_code", ProviderConfig(name="claude_code", binary="c")), ClaudeCodeAdapter)
    assert isinstance(adapter_for("codex", ProviderConfig(name="codex", binary="c")), CodexAdapter)


def test_resolve_binary_missing_path_names_it(tmp_path):
    missing = tmp_path / "no" / "claude"
    with pytest.raises(FailedPrecondition) as info:
        ClaudeCodeAdapter(ProviderConfig(name="claude_code", binary=str(missing))).resolve_binary()
    assert str(missing) in str(info.value)


def test_resolve_binary_not_executable_and_not_on_path(tmp_path):
    plain = tmp_path / "codex"
    plain.write_text("#!/bin/sh\n")
    with pytest.raises(FailedPrecondition, match=str(plain)):
        CodexAdapter(ProviderConfig(name="codex", binary=str(plain))).resolve_binary()
    with pytest.raises(FailedPrecondition, match="berth-no-such-cli"):
        CodexAdapter(ProviderConfig(name="codex", binary="berth-no-such-cli")).resolve_binary()


def test_resolve_binary_finds_a_name_on_path(tmp_path):
    exe = tmp_path / "fake-claude"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    a = ClaudeCodeAdapter(ProviderConfig(name="claude_code", binary="fake-claude",
                                         env={"PATH": f"{tmp_path}{os.pathsep}/usr/bin"}))
    assert a.resolve_binary() == str(exe)
