"""Pure unit tests of the agent adapters: argv, env, stdin encoding and parse_line on real
lines captured from claude 2.1.328 and codex 0.169.0 (shortened where they are long)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.agents import ClaudeCodeAdapter, CodexAdapter, TurnSpec, adapter_for
from daemon.agents.base import Decision
from daemon.config import ProviderConfig
from daemon.errors import FailedPrecondition, InvalidArgument

SID = "6a910e96-d540-4a6b-82ee-9b8190d22389"
TID = "01a2090c-41da-7341-b4b7-cdc2f09c8f42"

CLAUDE_INIT = json.dumps(
    {
        "type": "system",
        "subtype": "init",
        "cwd": "/tmp/repo",
        "session_id": SID,
        "tools": ["Bash", "Write"],
        "mcp_servers": [],
        "model": "claude-opus-5-5",
        "permissionMode": "acceptEdits",
        "apiKeySource": "ANTHROPIC_API_KEY",
        "claude_code_version": "2.1.328",
        "uuid": "fb75ac12",
    }
)
CLAUDE_TOOL_USE = (
    '{"type":"assistant","message":{"id":"msg_1df5a687d6d1444bb34a741f","type":"message","role":"assistant",'
    '"model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_2ee4a04859fa4565b95c","name":"Write",'
    '"input":{"file_path":"/tmp/repo/hello.txt","content":"hi there"}}],"stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},'
    '"context_management":null},"parent_tool_use_id":null,"session_id":"' + SID + '",'
    '"uuid":"450d1b90-51a9-403a-9a6a-08eb2541ad8e","timestamp":"2026-11-23T15:35:26.590Z"}'
)
CLAUDE_TOOL_RESULT = (
    '{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_2ee4a04859fa4565b95c",'
    '"type":"tool_result","content":"File created successfully at: /tmp/repo/hello.txt"}]},'
    '"parent_tool_use_id":null,"session_id":"' + SID + '","uuid":"79f6bf5b","timestamp":"2026-11-23T15:35:26.637Z",'
    '"tool_use_result":{"type":"create","filePath":"/tmp/repo/hello.txt","content":"hi there"}}'
)
CLAUDE_TEXT = (
    '{"type":"assistant","message":{"id":"msg_f47b4c344dee45e08f5f6528","type":"message","role":"assistant",'
    '"model":"claude-opus-5-5","content":[{"type":"text","text":"done writing"}],"stop_reason":null,'
    '"usage":{"input_tokens":12,"output_tokens":1}},"parent_tool_use_id":null,"session_id":"' + SID + '"}'
)
CLAUDE_RESULT = (
    '{"duration_api_ms":51,"stop_reason":"end_turn","session_id":"' + SID + '","total_cost_usd":0.000376,'
    '"usage":{"input_tokens":24,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":14},'
    '"permission_denials":[],"terminal_reason":"completed","is_error":false,"num_turns":2,"subtype":"success",'
    '"result":"done writing","type":"result","duration_ms":220}'
)
CLAUDE_INTERRUPTED_NOTE = (
    '{"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user]"}]},'
    '"parent_tool_use_id":null,"session_id":"' + SID + '"}'
)
CLAUDE_INTERRUPTED_RESULT = (
    '{"duration_api_ms":0,"stop_reason":null,"session_id":"' + SID + '","total_cost_usd":0.000068,'
    '"usage":{"input_tokens":0,"output_tokens":0},"terminal_reason":"aborted_streaming","is_error":true,'
    '"num_turns":2,"subtype":"error_during_execution",'
    '"errors":["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],"type":"result"}'
)
CLAUDE_API_RETRY = (
    '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":552,"error_status":500,'
    '"error":"server_error","session_id":"' + SID + '","uuid":"e07dc931"}'
)
CLAUDE_CONTROL_RESPONSE = (
    '{"type":"control_response","response":{"subtype":"success","request_id":"req_1","response":{"still_queued":[]}}}'
)


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
    assert ev.content == {
        "type": "tool_use",
        "name": "Write",
        "tool_use_id": "toolu_2ee4a04859fa4565b95c",
        "arguments": {"file_path": "/tmp/repo/hello.txt", "content": "hi there"},
    }
    assert ev.provider_session_id == SID and ev.metadata["usage"]["input_tokens"] == 12


def test_claude_tool_result_becomes_a_tool_role_event():
    (ev,) = parse(claude(), CLAUDE_TOOL_RESULT)
    assert ev.role == "tool"
    assert ev.content == {
        "type": "tool_result",
        "tool_use_id": "toolu_2ee4a04859fa4565b95c",
        "output": "File created successfully at: /tmp/repo/hello.txt",
        "is_error": False,
        "success": True,
    }


def test_claude_tool_result_error_and_block_list_output():
    line = json.dumps(
        {
            "type": "user",
            "session_id": SID,
            "message": {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom "}, {"type": "text", "text": "again"}],
                    }
                ],
            },
        }
    )
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
    line = json.dumps(
        {
            "type": "result",
            "subtype": "error_max_turns",
            "is_error": True,
            "session_id": SID,
            "errors": ["max turns reached"],
        }
    )
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
    assert argv == [
        "/bin/true",
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model=claude-x",
        f"--resume={TID}",
        "--permission-mode",
        "acceptEdits",
        "--permission-prompt-tool",
        "stdio",
        "--max-turns",
        "5",
    ]
    assert a.assigned_session_id == TID
    fresh = claude(args=["--permission-mode", "plan"])
    own = fresh.argv(TurnSpec(cwd=Path("/tmp"), model="m"))
    assert f"--session-id={fresh.assigned_session_id}" in own and not any(w.startswith("--resume") for w in own)
    assert own.count("--permission-mode") == 1 and own[-2:] == ["--permission-mode", "plan"]
    assert "--model=m" in own


@pytest.mark.parametrize("adapter", [claude, codex])
@pytest.mark.parametrize(
    "field,spec",
    [
        ("resume_session_id", {"resume_id": "--dangerously-skip-permissions"}),
        ("resume_session_id", {"resume_id": "--dangerously-bypass-approvals-and-sandbox"}),
        ("resume_session_id", {"resume_id": "not-a-uuid"}),
        ("model", {"model": "--dangerously-skip-permissions"}),
        ("model", {"model": "-x"}),
    ],
)
def test_a_caller_value_that_would_read_as_an_option_never_reaches_argv(adapter, field, spec):
    with pytest.raises(InvalidArgument) as info:
        adapter().argv(TurnSpec(cwd=Path("/tmp"), prompt="p", **spec))
    assert info.value.field == field


def test_claude_stdin_encoding_and_interrupt_request():
    a = claude()
    assert json.loads(a.encode_message("hi\nthere")) == {
        "type": "user",
        "message": {"role": "user", "content": "hi\nthere"},
    }
    assert a.encode_message("x").endswith(b"\n") and a.encode_message("x").count(b"\n") == 1
    req = json.loads(a.interrupt_bytes())
    assert req["type"] == "control_request" and req["request"] == {"subtype": "interrupt"} and req["request_id"]


def test_env_adds_provider_env_over_the_base():
    a = claude(env={"ANTHROPIC_BASE_URL": "http://x", "HOME": "/h"})
    assert a.env({"HOME": "/root", "PATH": "/bin"}) == {"HOME": "/h", "PATH": "/bin", "ANTHROPIC_BASE_URL": "http://x"}


# -- codex ----------------------------------------------------------------------------------------


def _rpc(obj: dict) -> str:
    return json.dumps(obj)


def _ready(a: CodexAdapter, spec: TurnSpec | None = None) -> list[dict]:
    """Start `a` (argv + handshake) and answer its thread request; the handshake lines it wrote."""
    a.argv(spec or TurnSpec(cwd=Path("/tmp/wt"), model="gpt-x"))
    sent = [json.loads(line) for line in a.startup_bytes().splitlines()]
    thread = sent[-1]
    parse(a, _rpc({"id": thread["id"], "result": {"thread": {"id": TID, "cliVersion": "0.169.0"}}}))
    return sent


def test_codex_handshake_opens_a_thread_then_takes_messages_as_turns():
    a = codex()
    assert not a.ready
    sent = _ready(a)
    assert [m.get("method") for m in sent] == ["initialize", "initialized", "thread/start"]
    assert sent[2]["params"] == {
        "cwd": "/tmp/wt",
        "approvalPolicy": "untrusted",
        "sandbox": "workspace-write",
        "model": "gpt-x",
    }
    assert a.ready
    turn = json.loads(a.encode_message("-starts with dash"))
    assert turn["method"] == "turn/start" and turn["params"] == {
        "threadId": TID,
        "input": [{"type": "text", "text": "-starts with dash"}],
    }


def test_codex_resume_asks_for_the_thread_by_id_and_announces_it_once():
    a = codex()
    sent = _ready(a, TurnSpec(cwd=Path("/tmp/wt"), resume_id=TID))
    assert sent[2]["method"] == "thread/resume" and sent[2]["params"]["threadId"] == TID
    assert a.assigned_session_id == TID


def test_codex_permissions_and_plan_mode_choose_policy_and_sandbox():
    def policy(**spec):
        params = _ready(codex(), TurnSpec(cwd=Path("/tmp"), **spec))[2]["params"]
        return params["approvalPolicy"], params["sandbox"]

    assert policy() == ("untrusted", "workspace-write")
    assert policy(permissions="deny") == ("untrusted", "workspace-write")  # the daemon refuses each ask
    assert policy(permissions="auto") == ("never", "danger-full-access")
    assert policy(mode="plan") == ("never", "read-only")


def test_codex_turn_of_notifications_becomes_tool_use_result_text_and_turn_end():
    a = codex()
    _ready(a)
    cmd = {
        "type": "commandExecution",
        "id": "exec-1",
        "command": '/bin/bash -c "printf hi > hello.txt"',
        "status": "inProgress",
    }
    lines = [
        _rpc({"id": "turn-2", "result": {"turn": {"id": "t1", "status": "inProgress"}}}),
        _rpc({"method": "item/started", "params": {"item": {"type": "userMessage", "id": "u1", "content": []}}}),
        _rpc({"method": "item/started", "params": {"item": cmd}}),
        _rpc(
            {
                "method": "item/completed",
                "params": {"item": {**cmd, "status": "completed", "exitCode": 0, "aggregatedOutput": ""}},
            }
        ),
        _rpc({"method": "thread/tokenUsage/updated", "params": {"tokenUsage": {"last": {"outputTokens": 9}}}}),
        _rpc({"method": "item/completed", "params": {"item": {"type": "agentMessage", "id": "m", "text": "done"}}}),
        _rpc({"method": "turn/completed", "params": {"turn": {"id": "t1", "status": "completed"}}}),
    ]
    events = [ev for line in lines for ev in parse(a, line)]
    assert [(e.role, e.content["type"]) for e in events] == [
        ("assistant", "tool_use"),
        ("tool", "tool_result"),
        ("assistant", "text"),
        ("system", "system"),
    ]
    use, result, text, done = events
    assert use.content["arguments"] == {"command": "printf hi > hello.txt"}  # the script, not the bash line
    assert result.content["tool_use_id"] == "exec-1" and result.content["success"] is True
    assert text.content["text"] == "done"
    assert done.turn_complete and done.turn_error is None and done.metadata["usage"] == {"output_tokens": 9}


def test_codex_failed_and_interrupted_turns_end_with_their_error():
    a = codex()
    _ready(a)
    (failed,) = parse(
        a,
        _rpc(
            {
                "method": "turn/completed",
                "params": {"turn": {"id": "t", "status": "failed", "error": {"message": "quota exceeded"}}},
            }
        ),
    )
    assert failed.turn_error == "quota exceeded" and failed.content["type"] == "error"
    (cut,) = parse(a, _rpc({"method": "turn/completed", "params": {"turn": {"id": "t", "status": "interrupted"}}}))
    assert cut.turn_error == "interrupted"
    (refused,) = parse(a, _rpc({"id": "turn-9", "error": {"code": -1, "message": "busy"}}))
    assert refused.turn_complete and refused.turn_error == "busy"


def test_codex_approval_request_becomes_an_ask_and_the_decision_its_answer():
    a = codex()
    _ready(a)
    (ev,) = parse(
        a,
        _rpc(
            {
                "id": 0,
                "method": "item/commandExecution/requestApproval",
                "params": {
                    "itemId": "exec-1",
                    "threadId": TID,
                    "turnId": "t1",
                    "startedAtMs": 1,
                    "command": '/bin/bash -c "npm test"',
                    "cwd": "/tmp/wt",
                    "reason": "needs network",
                },
            }
        ),
    )
    ask = ev.ask
    assert ask.kind == "permission" and ask.tool_name == "command_execution" and ask.request_key == "0"
    assert ask.input["command"] == "npm test" and ask.detail["reason"] == "needs network"
    assert json.loads(a.encode_decision(ask, Decision(allow=True))) == {"id": 0, "result": {"decision": "accept"}}
    assert json.loads(a.encode_decision(ask, Decision(allow=True, remember=True)))["result"] == {
        "decision": "acceptForSession"
    }
    decline, steer = (
        json.loads(line) for line in a.encode_decision(ask, Decision(allow=False, message="not now")).splitlines()
    )
    assert decline == {"id": 0, "result": {"decision": "decline"}}
    assert steer["method"] == "turn/steer" and steer["params"]["expectedTurnId"] == "t1"
    assert "not now" in steer["params"]["input"][0]["text"]
    (gone,) = parse(a, _rpc({"method": "serverRequest/resolved", "params": {"threadId": TID, "requestId": 0}}))
    assert gone.withdrawn == "0"


def test_codex_question_and_unknown_server_requests():
    a = codex()
    _ready(a)
    (ev,) = parse(
        a,
        _rpc(
            {
                "id": "q1",
                "method": "item/tool/requestUserInput",
                "params": {
                    "itemId": "i",
                    "threadId": TID,
                    "turnId": "t",
                    "isBlocking": True,
                    "questions": [{"id": "color", "header": "Color", "question": "Which?"}],
                },
            }
        ),
    )
    assert ev.ask.kind == "question"
    answer = {"answers": {"color": {"answers": ["teal"]}}}
    assert json.loads(a.encode_decision(ev.ask, Decision(allow=True, updated_input=answer))) == {
        "id": "q1",
        "result": answer,
    }
    assert parse(a, _rpc({"id": 7, "method": "account/chatgptAuthTokens/refresh", "params": {}})) == []
    (reply,) = a.take_outgoing()
    assert json.loads(reply)["id"] == 7 and "not supported" in json.loads(reply)["error"]["message"]


def test_codex_thread_that_cannot_open_fails_the_session():
    a = codex()
    a.argv(TurnSpec(cwd=Path("/tmp"), resume_id=TID))
    thread = json.loads(a.startup_bytes().splitlines()[-1])
    (ev,) = parse(a, _rpc({"id": thread["id"], "error": {"code": -1, "message": "no rollout found"}}))
    assert ev.content["type"] == "error" and "no rollout found" in (a.failure or "") and not a.ready


def test_codex_interrupt_names_the_running_turn_and_waits_for_its_id():
    a = codex()
    _ready(a)
    a.encode_message("go")
    assert a.interrupt_bytes() == b""  # the turn's id is not known yet
    parse(a, _rpc({"method": "turn/started", "params": {"turn": {"id": "t7"}}}))
    (late,) = a.take_outgoing()
    assert json.loads(late)["method"] == "turn/interrupt" and json.loads(late)["params"]["turnId"] == "t7"
    assert json.loads(a.interrupt_bytes())["params"] == {"threadId": TID, "turnId": "t7"}


def test_claude_can_use_tool_becomes_an_ask_and_decisions_its_control_response():
    a = claude()
    line = _rpc(
        {
            "type": "control_request",
            "request_id": "r1",
            "request": {
                "subtype": "can_use_tool",
                "tool_name": "Bash",
                "input": {"command": "npm test"},
                "tool_use_id": "toolu_1",
                "permission_suggestions": [{"type": "addRules"}],
            },
        }
    )
    (ev,) = parse(a, line)
    assert ev.ask.kind == "permission" and ev.ask.input == {"command": "npm test"}
    allow = json.loads(a.encode_decision(ev.ask, Decision(allow=True, updated_input={"command": "npm test -s"})))
    assert allow["response"] == {
        "subtype": "success",
        "request_id": "r1",
        "response": {"behavior": "allow", "updatedInput": {"command": "npm test -s"}, "toolUseID": "toolu_1"},
    }
    deny = json.loads(a.encode_decision(ev.ask, Decision(allow=False, message="no")))["response"]["response"]
    assert deny["behavior"] == "deny" and deny["message"] == "no"
    (gone,) = parse(a, _rpc({"type": "control_cancel_request", "request_id": "r1"}))
    assert gone.withdrawn == "r1"
    assert (
        parse(a, _rpc({"type": "control_request", "request_id": "r2", "request": {"subtype": "hook_callback"}})) == []
    )
    assert json.loads(a.take_outgoing()[0])["response"]["subtype"] == "error"


def test_claude_permissions_choose_the_permission_mode_and_the_prompt_tool():
    def flags(**spec):
        argv = claude().argv(TurnSpec(cwd=Path("/tmp"), **spec))
        return argv[argv.index("--permission-mode") :]

    assert flags() == ["--permission-mode", "acceptEdits", "--permission-prompt-tool", "stdio"]
    assert flags(permissions="deny") == ["--permission-mode", "acceptEdits"]
    assert flags(mode="plan") == ["--permission-mode", "plan", "--permission-prompt-tool", "stdio"]
    assert flags(allowed_tools=("Bash(npm test:*)",))[-1] == "--allowedTools=Bash(npm test:*)"
    with pytest.raises(InvalidArgument):
        claude().argv(TurnSpec(cwd=Path("/tmp"), allowed_tools=("--dangerously-skip-permissions",)))
    if os.geteuid() == 0:
        with pytest.raises(FailedPrecondition) as info:
            claude().argv(TurnSpec(cwd=Path("/tmp"), permissions="auto"))
        assert info.value.field == "session_settings.code.permissions"


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
    a = ClaudeCodeAdapter(
        ProviderConfig(name="claude_code", binary="fake-claude", env={"PATH": f"{tmp_path}{os.pathsep}/usr/bin"})
    )
    assert a.resolve_binary() == str(exe)


def test_claude_turn_usage_is_the_turns_tokens_and_its_share_of_the_running_cost():
    a = claude()

    def result(cost: float, tokens: int) -> dict:
        (ev,) = parse(
            a,
            json.dumps(
                {
                    "type": "result",
                    "subtype": "success",
                    "session_id": SID,
                    "duration_ms": 5,
                    "total_cost_usd": cost,
                    "usage": {"input_tokens": tokens, "output_tokens": 1, "cache_read_input_tokens": 3},
                }
            ),
        )
        return ev.metadata["turn_usage"]

    assert result(0.25, 10) == {
        "input_tokens": 10,
        "output_tokens": 1,
        "cache_read_tokens": 3,
        "cache_creation_tokens": 0,
        "cost_usd": 0.25,
        "duration_ms": 5,
    }
    assert result(0.75, 4)["cost_usd"] == 0.5  # total 0.75 so far: this turn cost 0.5


def test_codex_turn_usage_is_the_threads_growth_over_the_turn_not_its_resumed_history():
    a = codex()
    _ready(a)

    def report(total_in: int, last_in: int) -> None:
        parse(
            a,
            _rpc(
                {
                    "method": "thread/tokenUsage/updated",
                    "params": {
                        "tokenUsage": {
                            "total": {"inputTokens": total_in, "cachedInputTokens": 0, "outputTokens": total_in // 10},
                            "last": {"inputTokens": last_in, "cachedInputTokens": 0, "outputTokens": last_in // 10},
                        }
                    },
                }
            ),
        )

    def end() -> dict:
        (ev,) = parse(
            a,
            _rpc({"method": "turn/completed", "params": {"turn": {"id": "t", "status": "completed", "durationMs": 9}}}),
        )
        return ev.metadata["turn_usage"]

    report(1000 + 20, 20)  # a resumed thread: 1000 tokens before this process
    report(1000 + 50, 30)
    assert end()["input_tokens"] == 50
    report(1000 + 80, 30)
    second = end()
    assert (second["input_tokens"], second["output_tokens"], second["cost_usd"]) == (30, 3, None)
