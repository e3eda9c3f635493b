"""OpenAI Codex: one long-lived `codex app-server` process per session, spoken to in JSON-RPC on stdio.

The protocol is the pinned binary's own (`codex app-server generate-json-schema` prints it):
`initialize` → `initialized` → `thread/start` (or `thread/resume` with the thread id) → one `turn/start`
per user message, `turn/interrupt` to cut a turn short. The server announces `turn/*` and `item/*`
notifications, and asks the client before a command or a file change runs
(`item/commandExecution/requestApproval`, `item/fileChange/requestApproval`) or when the model asks the
user something (`item/tool/requestUserInput`); those become approvals.

Size: the app-server's JSON-RPC client and its mapping of every notification and request to
events and approvals; both follow the same protocol schema and change together.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from daemon.agents.base import AgentAdapter, AgentEvent, ApprovalAsk, Decision, TurnSpec, system_text
from daemon.errors import InvalidArgument
from daemon.validation import validate_model, validate_provider_session_id

__all__ = ["REASONING_EFFORTS", "CodexAdapter"]

REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
_APPROVALS = {
    "item/commandExecution/requestApproval": ("permission", "command_execution"),
    "item/fileChange/requestApproval": ("permission", "file_change"),
    "item/permissions/requestApproval": ("permission", "permissions"),
    "item/tool/requestUserInput": ("question", "request_user_input"),
}
_USAGE_NAMES = {
    "inputTokens": "input_tokens",
    "cachedInputTokens": "cached_input_tokens",
    "cacheWriteInputTokens": "cache_write_input_tokens",
    "outputTokens": "output_tokens",
    "reasoningOutputTokens": "reasoning_output_tokens",
    "totalTokens": "total_tokens",
}
_TOOL_ITEMS = ("commandExecution", "fileChange", "mcpToolCall", "webSearch", "dynamicToolCall")


def _script(command: str) -> str:
    """The script of a `/bin/bash -c "<script>"` command line (how codex shows what it runs), else the line."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if len(words) == 3 and words[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh") and words[1] in ("-c", "-lc"):
        return words[2]
    return command


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


class CodexAdapter(AgentAdapter):
    """`codex app-server [-c key=value …]`; see the module docstring."""

    provider = "codex"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._spec: TurnSpec | None = None
        self._thread_id: str | None = None
        self._announced_thread: str | None = None
        self._turn_id: str | None = None
        self._interrupt_wanted = False
        self._next_id = 0
        self._pending_turns: set[str] = set()  # ids of our turn/start requests not yet answered
        self._outgoing: list[bytes] = []
        self._items: dict[str, dict[str, Any]] = {}  # tool items started and not completed
        self._usage: dict[str, Any] | None = None
        # The thread's cumulative token counts when the current turn began (codex reports running totals).
        self._total_before: dict[str, int] | None = None
        self._total_now: dict[str, int] = {}

    # -- process ---------------------------------------------------------------------------------

    def argv(self, spec: TurnSpec) -> list[str]:
        self._spec = spec
        argv = [self.resolve_binary(), "app-server"]
        model = spec.model or self.config.default_model
        if model:
            validate_model(model)
        if spec.thinking:
            if spec.thinking not in REASONING_EFFORTS:
                raise InvalidArgument(
                    "session_settings.code.providers.codex.thinking", f"unknown reasoning effort {spec.thinking!r}"
                )
            argv += ["-c", f'model_reasoning_effort="{spec.thinking}"']
        if spec.resume_id:
            validate_provider_session_id(spec.resume_id)
            self.assigned_session_id = spec.resume_id
        return argv + list(self.config.args)

    def _policy(self) -> tuple[str, str]:
        """(approvalPolicy, sandbox) for the session. "ask": codex asks before anything it does not know
        to be safe ("untrusted"), inside the workspace-write sandbox; "deny": asked the same way, and the
        daemon refuses every ask unasked; "auto": never asks, no sandbox; plan mode: never asks, and the
        read-only sandbox refuses every write."""
        spec = self._spec
        permissions = spec.permissions if spec is not None else "ask"
        if spec is not None and spec.mode == "plan":
            return "never", "read-only"
        if permissions == "auto":
            return "never", "danger-full-access"
        return "untrusted", "workspace-write"

    def _request(self, method: str, params: dict[str, Any], prefix: str) -> tuple[str, bytes]:
        self._next_id += 1
        rid = f"{prefix}-{self._next_id}"
        return rid, _line({"id": rid, "method": method, "params": params})

    def startup_bytes(self) -> bytes:
        spec = self._spec
        assert spec is not None, "argv() first"
        approval, sandbox = self._policy()
        params: dict[str, Any] = {"cwd": str(spec.cwd), "approvalPolicy": approval, "sandbox": sandbox}
        model = spec.model or self.config.default_model
        if model:
            params["model"] = model
        init = _line(
            {
                "id": "init",
                "method": "initialize",
                "params": {"clientInfo": {"name": "berth", "title": "Berth", "version": "1"}},
            }
        )
        initialized = _line({"method": "initialized"})
        if spec.resume_id:
            _, thread = self._request("thread/resume", {**params, "threadId": spec.resume_id}, "thread")
        else:
            _, thread = self._request("thread/start", params, "thread")
        return init + initialized + thread

    @property
    def ready(self) -> bool:
        return self._thread_id is not None

    def take_outgoing(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def encode_message(self, text: str) -> bytes:
        assert self._thread_id is not None, "not ready"
        rid, line = self._request(
            "turn/start", {"threadId": self._thread_id, "input": [{"type": "text", "text": text}]}, "turn"
        )
        self._pending_turns.add(rid)
        self._turn_id = None
        self._interrupt_wanted = False
        return line

    def interrupt_bytes(self) -> bytes | None:
        if self._thread_id is None:
            return b""
        if self._turn_id is None:
            self._interrupt_wanted = True  # sent once the turn's id is known
            return b""
        _, line = self._request("turn/interrupt", {"threadId": self._thread_id, "turnId": self._turn_id}, "int")
        return line

    def encode_decision(self, ask: ApprovalAsk, decision: Decision) -> bytes:
        rid = json.loads(ask.request_key)
        if ask.tool_name == "request_user_input":
            answers = (decision.updated_input or {}).get("answers") if decision.allow else None
            result: dict[str, Any] = {"answers": answers if isinstance(answers, dict) else {}}
        elif ask.tool_name == "permissions":
            granted = ask.input.get("permissions") if decision.allow else {}
            result = {
                "permissions": granted if isinstance(granted, dict) else {},
                "scope": "session" if decision.remember else "turn",
            }
        elif decision.allow:
            result = {"decision": "acceptForSession" if decision.remember else "accept"}
        else:
            result = {"decision": "decline"}
        out = _line({"id": rid, "result": result})
        if not decision.allow and decision.message and self._thread_id and ask.detail.get("turn_id"):
            # A decline carries no words; the model reads them as input steered into the same turn.
            _, steer = self._request(
                "turn/steer",
                {
                    "threadId": self._thread_id,
                    "expectedTurnId": ask.detail["turn_id"],
                    "input": [{"type": "text", "text": f"The user denied that request: {decision.message}"}],
                },
                "steer",
            )
            out += steer
        return out

    # -- parsing ---------------------------------------------------------------------------------

    def parse_obj(self, data: dict[str, Any]) -> list[AgentEvent]:
        method = data.get("method")
        if method is None:
            return self._response(data)
        raw = data.get("params")
        params: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if "id" in data:
            return self._server_request(str(method), data["id"], params)
        return self._notification(str(method), params)

    def _response(self, data: dict[str, Any]) -> list[AgentEvent]:
        rid = str(data.get("id"))
        error = data.get("error")
        message = str(error.get("message") if isinstance(error, dict) else error) if error is not None else ""
        if rid.startswith("thread-"):
            if error is not None:
                self.failure = f"codex could not open the thread: {message}"
                return [
                    AgentEvent(
                        role="system",
                        content={"type": "error", "message": self.failure},
                        metadata={"raw_type": "thread/error"},
                    )
                ]
            thread = (data.get("result") or {}).get("thread") or {}
            self._thread_id = str(thread.get("id") or "") or None
            if self._thread_id is None:
                self.failure = "codex opened a thread without an id"
                return []
            if self._thread_id == self._announced_thread:
                return []
            self._announced_thread = self._thread_id
            ev = system_text("session started", raw_type="thread/started", cli_version=thread.get("cliVersion"))
            ev.provider_session_id = self._thread_id
            return [ev]
        if rid.startswith("turn-"):
            self._pending_turns.discard(rid)
            if error is not None:
                return [
                    AgentEvent(
                        role="system",
                        content={"type": "error", "message": message or "turn refused"},
                        metadata={"raw_type": "turn/error"},
                        turn_complete=True,
                        turn_error=message,
                    )
                ]
            turn = (data.get("result") or {}).get("turn") or {}
            return self._turn_known(str(turn.get("id") or ""))
        if error is not None and not rid.startswith("steer-"):
            return [
                AgentEvent(
                    role="system",
                    content={"type": "error", "message": message},
                    metadata={"raw_type": "rpc/error", "request": rid},
                )
            ]
        return []

    def _turn_known(self, turn_id: str) -> list[AgentEvent]:
        if turn_id and self._turn_id is None:
            self._turn_id = turn_id
            if self._interrupt_wanted and self._thread_id:
                self._interrupt_wanted = False
                _, line = self._request("turn/interrupt", {"threadId": self._thread_id, "turnId": turn_id}, "int")
                self._outgoing.append(line)
        return []

    def _server_request(self, method: str, rid: Any, params: dict[str, Any]) -> list[AgentEvent]:
        known = _APPROVALS.get(method)
        if known is None:
            self._outgoing.append(
                _line({"id": rid, "error": {"code": -32601, "message": f"{method} is not supported by Berth"}})
            )
            return []
        kind, tool = known
        item_id = str(params.get("itemId") or "")
        if tool == "command_execution":
            line = str(params.get("command") or "")
            tool_input: dict[str, Any] = {"command": _script(line), "cwd": params.get("cwd")}
            if line != tool_input["command"]:
                tool_input["command_line"] = line
        elif tool == "file_change":
            started = self._items.get(item_id) or {}
            tool_input = {"changes": started.get("changes", []), "grant_root": params.get("grantRoot")}
        elif tool == "permissions":
            tool_input = {"permissions": params.get("permissions")}
        else:
            tool_input = {"questions": params.get("questions", [])}
        detail = {
            k: params[k]
            for k in ("reason", "proposedExecpolicyAmendment", "networkApprovalContext")
            if params.get(k) is not None
        }
        detail["turn_id"] = params.get("turnId")
        ask = ApprovalAsk(
            request_key=json.dumps(rid),
            kind=kind,
            tool_name=tool,
            input={k: v for k, v in tool_input.items() if v is not None},
            tool_use_id=item_id,
            detail=detail,
        )
        return [
            AgentEvent(
                role="system",
                content={"type": "system", "message": f"{tool} asks for permission"},
                metadata={"raw_type": method},
                ask=ask,
            )
        ]

    def _notification(self, method: str, params: dict[str, Any]) -> list[AgentEvent]:
        if method == "turn/started":
            return self._turn_known(str((params.get("turn") or {}).get("id") or ""))
        if method == "turn/completed":
            return [self._turn_completed(params.get("turn") or {})]
        if method == "thread/tokenUsage/updated":
            usage = params.get("tokenUsage") or {}
            last = usage.get("last") or usage.get("total")
            if isinstance(last, dict):
                # The names codex exec and the Responses API use, for every provider's usage alike.
                self._usage = {_USAGE_NAMES.get(str(k), str(k)): v for k, v in last.items()}
            total, last = _counts(usage.get("total")), _counts(usage.get("last"))
            if total:
                if self._total_before is None:  # the first report of this turn: what came before it
                    self._total_before = {k: total.get(k, 0) - last.get(k, 0) for k in total}
                self._total_now = total
            return []
        if method == "serverRequest/resolved":
            rid = params.get("requestId")
            return (
                [
                    AgentEvent(
                        role="system",
                        content={"type": "system", "message": "request resolved"},
                        metadata={"raw_type": method},
                        withdrawn=json.dumps(rid),
                    )
                ]
                if rid is not None
                else []
            )
        if method == "error":
            err = params.get("error") or {}
            if params.get("willRetry"):
                return []
            return [
                AgentEvent(
                    role="system",
                    content={"type": "error", "message": str(err.get("message", ""))},
                    metadata={"raw_type": method},
                )
            ]
        if method in ("item/started", "item/completed"):
            item = params.get("item") or {}
            return self._item(method, item)
        return []

    def _turn_completed(self, turn: dict[str, Any]) -> AgentEvent:
        status = turn.get("status")
        meta: dict[str, Any] = {"raw_type": f"turn/completed/{status}"}
        if self._usage:
            meta["usage"] = self._usage
        if turn.get("durationMs") is not None:
            meta["duration_ms"] = turn.get("durationMs")
        meta["turn_usage"] = self._turn_usage(turn)
        self._turn_id = None
        self._usage = None
        self._items.clear()
        if status == "completed":
            return AgentEvent(
                role="system",
                content={"type": "system", "message": "turn completed"},
                metadata=meta,
                turn_complete=True,
            )
        if status == "interrupted":
            error = "interrupted"
        else:
            err = turn.get("error") or {}
            error = str(err.get("message") if isinstance(err, dict) else err) or f"turn {status}"
        return AgentEvent(
            role="system",
            content={"type": "error", "message": error},
            metadata=meta,
            turn_complete=True,
            turn_error=error,
        )

    def _turn_usage(self, turn: dict[str, Any]) -> dict[str, Any]:
        """This turn's tokens: the thread's totals now minus those when the turn began."""
        before, now = self._total_before or {}, self._total_now
        delta = {k: max(now.get(k, 0) - before.get(k, 0), 0) for k in now}
        self._total_before = dict(now) if now else None
        cached = delta.get("cachedInputTokens", 0)
        duration = turn.get("durationMs")
        return {
            "input_tokens": max(delta.get("inputTokens", 0) - cached, 0),
            "output_tokens": delta.get("outputTokens", 0),
            "cache_read_tokens": cached,
            "cache_creation_tokens": delta.get("cacheWriteInputTokens", 0),
            "cost_usd": None,
            "duration_ms": int(duration) if isinstance(duration, (int, float)) else 0,
        }

    def _item(self, method: str, item: dict[str, Any]) -> list[AgentEvent]:
        itype = item.get("type")
        meta = {"raw_type": f"{method}/{itype}"}
        if itype == "agentMessage":
            if method != "item/completed":
                return []
            return [AgentEvent(role="assistant", content={"type": "text", "text": item.get("text", "")}, metadata=meta)]
        if itype in _TOOL_ITEMS:
            return self._tool(method, item, meta)
        return []  # the user's own message, reasoning, plans …: not part of the conversation record

    def _tool(self, method: str, item: dict[str, Any], meta: dict[str, Any]) -> list[AgentEvent]:
        itype = item.get("type")
        tool_id = str(item.get("id", ""))
        arguments: dict[str, Any]
        if itype == "commandExecution":
            name, arguments = "command_execution", {"command": _script(str(item.get("command", "")))}
        elif itype == "fileChange":
            name, arguments = "file_change", {"changes": item.get("changes", [])}
        elif itype in ("mcpToolCall", "dynamicToolCall"):
            name = f"{item.get('server', 'dynamic')}.{item.get('tool', '')}"
            args = item.get("arguments")
            arguments = args if isinstance(args, dict) else {"arguments": args}
        else:
            name, arguments = "web_search", {"query": item.get("query", "")}
        events: list[AgentEvent] = []
        if tool_id not in self._items:
            self._items[tool_id] = item
            events.append(
                AgentEvent(
                    role="assistant",
                    content={"type": "tool_use", "name": name, "tool_use_id": tool_id, "arguments": arguments},
                    metadata=meta,
                )
            )
        if method != "item/completed":
            return events
        self._items.pop(tool_id, None)
        status = item.get("status")
        result_meta = dict(meta)
        if itype == "commandExecution":
            exit_code = item.get("exitCode")
            output: Any = item.get("aggregatedOutput") or ""
            ok = status == "completed" and exit_code in (0, None)
            result_meta["exit_code"] = exit_code
        elif itype in ("mcpToolCall", "dynamicToolCall"):
            output = item.get("result") if item.get("error") is None else item.get("error")
            ok = status == "completed" and item.get("error") is None
        else:
            output = {"status": status, **({"changes": item["changes"]} if "changes" in item else {})}
            ok = status in ("completed", None)
        events.append(
            AgentEvent(
                role="tool",
                content={
                    "type": "tool_result",
                    "tool_use_id": tool_id,
                    "output": output,
                    "is_error": not ok,
                    "success": ok,
                },
                metadata=result_meta,
            )
        )
        return events
