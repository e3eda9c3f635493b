"""Claude Code: one long-lived `claude -p` process speaking stream-json on stdin/stdout."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from daemon.agents.base import AgentAdapter, AgentEvent, ApprovalAsk, Decision, TurnSpec, system_text
from daemon.errors import FailedPrecondition
from daemon.validation import validate_model, validate_provider_session_id, validate_tool_rule

__all__ = ["QUESTION_TOOLS", "ClaudeCodeAdapter"]

# Tools whose "permission" request is really a question for the user: the answer rides in updatedInput.
QUESTION_TOOLS = frozenset({"AskUserQuestion"})


def _tool_output(content: Any) -> Any:
    """A tool_result's content: a string stays; a list of text blocks becomes their text."""
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "".join(b.get("text", "") for b in content)
    return content


class ClaudeCodeAdapter(AgentAdapter):
    """`claude -p --input-format stream-json --output-format stream-json --verbose …`."""

    provider = "claude_code"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._announced_session: str | None = None
        self._outgoing: list[bytes] = []
        self._cost_so_far = 0.0  # claude reports the process's running total cost with every result

    def argv(self, spec: TurnSpec) -> list[str]:
        argv = [
            self.resolve_binary(),
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
        ]
        # Values ride in the same word as their option ("--model=x"), so none can be read as an option.
        model = spec.model or self.config.default_model
        if model:
            validate_model(model)
            argv.append(f"--model={model}")
        if spec.resume_id:
            validate_provider_session_id(spec.resume_id)
            argv.append(f"--resume={spec.resume_id}")
            self.assigned_session_id = spec.resume_id
        else:
            # Choosing the id ourselves makes it known before the first turn.
            self.assigned_session_id = str(uuid.uuid4())
            argv.append(f"--session-id={self.assigned_session_id}")
        if "--permission-mode" not in self.config.args:
            argv += self._permission_args(spec)
        for rule in spec.allowed_tools:
            validate_tool_rule(rule)
            argv.append(f"--allowedTools={rule}")
        return argv + list(self.config.args)

    @staticmethod
    def _permission_args(spec: TurnSpec) -> list[str]:
        """How claude decides on a tool. Edits inside the worktree run unasked (acceptEdits); what claude
        would ask a person comes to the daemon as a can_use_tool control request (--permission-prompt-tool
        stdio) unless asking is off ("deny": refused unasked, as claude -p does by itself)."""
        if spec.mode == "plan":
            # claude's plan mode: reads and plans, writes nothing; its asks (ExitPlanMode …) still come here.
            return ["--permission-mode", "plan", "--permission-prompt-tool", "stdio"]
        if spec.permissions == "auto":
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                raise FailedPrecondition(
                    'session_settings.code.permissions: claude refuses "auto" (bypassPermissions) as root; '
                    'run the daemon as a normal user or choose "ask"',
                    field="session_settings.code.permissions",
                )
            return ["--permission-mode", "bypassPermissions"]
        if spec.permissions == "deny":
            return ["--permission-mode", "acceptEdits"]
        return ["--permission-mode", "acceptEdits", "--permission-prompt-tool", "stdio"]

    def take_outgoing(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def encode_decision(self, ask: ApprovalAsk, decision: Decision) -> bytes:
        if decision.allow:
            updated = dict(ask.input)
            if decision.updated_input:
                updated.update(decision.updated_input)
            answer: dict[str, Any] = {"behavior": "allow", "updatedInput": updated}
        else:
            answer = {"behavior": "deny", "message": decision.message or "The user denied this."}
        if ask.tool_use_id:
            answer["toolUseID"] = ask.tool_use_id
        return _control_response(ask.request_key, answer)

    def encode_message(self, text: str) -> bytes:
        line = {"type": "user", "message": {"role": "user", "content": text}}
        return json.dumps(line).encode() + b"\n"

    def interrupt_bytes(self) -> bytes | None:
        # The SDK control protocol: the CLI answers with a control_response, then ends
        # the turn with a `result` of subtype error_during_execution.
        req = {
            "type": "control_request",
            "request_id": f"req_{uuid.uuid4().hex[:12]}",
            "request": {"subtype": "interrupt"},
        }
        return json.dumps(req).encode() + b"\n"

    def parse_obj(self, data: dict[str, Any]) -> list[AgentEvent]:
        kind = data.get("type")
        sid = data.get("session_id") or None
        if kind == "system":
            return self._system(data, sid)
        if kind == "assistant":
            return self._assistant(data, sid)
        if kind == "user":
            return self._user(data, sid)
        if kind == "result":
            return [self._result(data, sid)]
        if kind == "control_request":
            return self._control_request(data)
        if kind == "control_cancel_request":
            key = str(data.get("request_id") or "")
            return (
                [
                    AgentEvent(
                        role="system",
                        content={"type": "system", "message": "request withdrawn"},
                        metadata={"raw_type": kind},
                        withdrawn=key,
                    )
                ]
                if key
                else []
            )
        # control_response, stream_event, rate-limit notices …: nothing to record.
        return []

    def _control_request(self, data: dict[str, Any]) -> list[AgentEvent]:
        key = str(data.get("request_id") or "")
        raw = data.get("request")
        request: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if request.get("subtype") != "can_use_tool" or not key:
            # Nothing else was asked for at start (no hooks, no SDK MCP servers): say so rather than leave
            # claude waiting.
            if key:
                self._outgoing.append(
                    json.dumps(
                        {
                            "type": "control_response",
                            "response": {
                                "subtype": "error",
                                "request_id": key,
                                "error": f"unsupported control request {request.get('subtype')!r}",
                            },
                        }
                    ).encode()
                    + b"\n"
                )
            return []
        name = str(request.get("tool_name") or "")
        given = request.get("input")
        tool_input: dict[str, Any] = given if isinstance(given, dict) else {}
        detail = {
            k: request[k]
            for k in ("permission_suggestions", "blocked_path", "decision_reason", "title", "description", "agent_id")
            if request.get(k) is not None
        }
        ask = ApprovalAsk(
            request_key=key,
            kind="question" if name in QUESTION_TOOLS else "permission",
            tool_name=name,
            input=tool_input,
            tool_use_id=str(request.get("tool_use_id") or ""),
            detail=detail,
        )
        return [
            AgentEvent(
                role="system",
                content={"type": "system", "message": f"{name} asks for permission"},
                metadata={"raw_type": "control_request/can_use_tool"},
                ask=ask,
            )
        ]

    def _system(self, data: dict[str, Any], sid: str | None) -> list[AgentEvent]:
        subtype = data.get("subtype")
        if subtype == "init":
            if sid == self._announced_session:
                return []  # claude repeats init at every turn
            self._announced_session = sid
            ev = system_text(
                "session started",
                raw_type="system/init",
                model=data.get("model"),
                cwd=data.get("cwd"),
                claude_code_version=data.get("claude_code_version"),
            )
            ev.provider_session_id = sid
            return [ev]
        if subtype == "api_retry":
            ev = AgentEvent(
                role="system",
                content={
                    "type": "error",
                    "message": f"model API retry {data.get('attempt')}/{data.get('max_retries')}: {data.get('error')}",
                },
                metadata={"raw_type": "system/api_retry", "error_status": data.get("error_status")},
            )
            ev.provider_session_id = sid
            return [ev]
        if subtype == "permission_denied":
            name = data.get("tool_name", "")
            return [
                AgentEvent(
                    role="system",
                    content={"type": "error", "message": f"{name} was refused without asking (permissions)"},
                    metadata={
                        "raw_type": "system/permission_denied",
                        "tool_name": name,
                        "tool_use_id": data.get("tool_use_id"),
                        "decision_reason_type": data.get("decision_reason_type"),
                    },
                )
            ]
        if subtype == "compact_boundary":
            return [system_text("conversation compacted", raw_type="system/compact_boundary")]
        return []

    def _assistant(self, data: dict[str, Any], sid: str | None) -> list[AgentEvent]:
        message = data.get("message") or {}
        meta = {"raw_type": "assistant", "model": message.get("model"), "message_id": message.get("id")}
        if message.get("usage"):
            meta["usage"] = message["usage"]
        if data.get("parent_tool_use_id"):
            meta["parent_tool_use_id"] = data["parent_tool_use_id"]
        events = []
        for block in message.get("content") or []:
            btype = block.get("type")
            if btype == "text":
                content = {"type": "text", "text": block.get("text", "")}
            elif btype == "tool_use":
                args = block.get("input")
                content = {
                    "type": "tool_use",
                    "name": block.get("name", ""),
                    "tool_use_id": block.get("id", ""),
                    "arguments": args if isinstance(args, dict) else {"input": args},
                }
            else:
                continue  # thinking and other blocks stay private
            events.append(AgentEvent(role="assistant", content=content, metadata=dict(meta), provider_session_id=sid))
        return events

    def _user(self, data: dict[str, Any], sid: str | None) -> list[AgentEvent]:
        message = data.get("message") or {}
        content = message.get("content")
        meta: dict[str, Any] = {"raw_type": "user"}
        if data.get("parent_tool_use_id"):
            meta["parent_tool_use_id"] = data["parent_tool_use_id"]
        if isinstance(content, str):
            blocks = [{"type": "text", "text": content}]
        else:
            blocks = [b for b in content or [] if isinstance(b, dict)]
        events = []
        for block in blocks:
            if block.get("type") == "tool_result":
                is_error = bool(block.get("is_error"))
                events.append(
                    AgentEvent(
                        role="tool",
                        content={
                            "type": "tool_result",
                            "tool_use_id": block.get("tool_use_id", ""),
                            "output": _tool_output(block.get("content")),
                            "is_error": is_error,
                            "success": not is_error,
                        },
                        metadata=dict(meta),
                        provider_session_id=sid,
                    )
                )
            elif block.get("type") == "text":
                # The user's own messages are not echoed; what comes back is claude's
                # notices such as "[Request interrupted by user]".
                events.append(
                    AgentEvent(
                        role="system",
                        content={"type": "system", "message": block.get("text", "")},
                        metadata=dict(meta),
                        provider_session_id=sid,
                    )
                )
        return events

    def _turn_usage(self, data: dict[str, Any]) -> dict[str, Any]:
        """This turn's usage: the result's usage is the turn's; its total_cost_usd is the process's so far."""
        raw = data.get("usage")
        usage: dict[str, Any] = raw if isinstance(raw, dict) else {}
        total = data.get("total_cost_usd")
        cost = None
        if isinstance(total, (int, float)) and not isinstance(total, bool):
            cost = float(total) - self._cost_so_far if total >= self._cost_so_far else float(total)
            self._cost_so_far = float(total)
        return {
            "input_tokens": _int(usage.get("input_tokens")),
            "output_tokens": _int(usage.get("output_tokens")),
            "cache_read_tokens": _int(usage.get("cache_read_input_tokens")),
            "cache_creation_tokens": _int(usage.get("cache_creation_input_tokens")),
            "cost_usd": round(cost, 10) if cost is not None else None,
            "duration_ms": _int(data.get("duration_ms")),
        }

    def _result(self, data: dict[str, Any], sid: str | None) -> AgentEvent:
        meta = {
            "raw_type": f"result/{data.get('subtype')}",
            "usage": data.get("usage"),
            "total_cost_usd": data.get("total_cost_usd"),
            "duration_ms": data.get("duration_ms"),
            "num_turns": data.get("num_turns"),
            "stop_reason": data.get("stop_reason"),
            "terminal_reason": data.get("terminal_reason"),
        }
        meta = {k: v for k, v in meta.items() if v is not None}
        meta["turn_usage"] = self._turn_usage(data)
        failed = bool(data.get("is_error")) or data.get("subtype") not in (None, "success")
        if not failed:
            return AgentEvent(
                role="system",
                content={"type": "system", "message": "turn completed"},
                metadata=meta,
                provider_session_id=sid,
                turn_complete=True,
            )
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            meta["errors"] = errors
        if str(data.get("terminal_reason", "")).startswith("aborted"):
            error = "interrupted"  # the turn was cut short on request (interrupt)
        elif isinstance(errors, list) and errors:
            error = "; ".join(str(e) for e in errors)
        elif isinstance(data.get("result"), str) and data["result"]:
            error = data["result"]
        else:
            error = str(data.get("subtype") or "error")
        return AgentEvent(
            role="system",
            content={"type": "error", "message": error},
            metadata=meta,
            provider_session_id=sid,
            turn_complete=True,
            turn_error=error,
        )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _control_response(request_id: str, response: dict[str, Any]) -> bytes:
    line = {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    }
    return json.dumps(line).encode() + b"\n"
