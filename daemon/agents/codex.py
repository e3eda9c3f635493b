"""OpenAI Codex: one `codex exec --json` process per turn, later turns via `exec resume`."""

from __future__ import annotations

import uuid
from typing import Any

from daemon.agents.base import AgentAdapter, AgentEvent, TurnSpec, system_text
from daemon.errors import InvalidArgument
from daemon.validation import validate_model, validate_provider_session_id

__all__ = ["REASONING_EFFORTS", "CodexAdapter"]

REASONING_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")

# Options that already decide codex's sandbox; without one we pick workspace-write.
_SANDBOX_OPTIONS = ("--sandbox", "-s", "--dangerously-bypass-approvals-and-sandbox", "--full-auto")


class CodexAdapter(AgentAdapter):
    """`codex exec --json [options] [resume <thread_id>] -- <prompt>`."""

    provider = "codex"
    persistent = False

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._announced_thread: str | None = None
        self._turn_key = uuid.uuid4().hex[:8]
        self._open_tools: set[str] = set()

    def argv(self, spec: TurnSpec) -> list[str]:
        argv = [self.resolve_binary(), "exec", "--json", "--skip-git-repo-check"]
        args = list(self.config.args)
        if not any(a in _SANDBOX_OPTIONS or a.startswith("sandbox_mode=") for a in args):
            argv += ["-c", 'sandbox_mode="workspace-write"']
        if not any(a.startswith("approval_policy=") for a in args):
            argv += ["-c", 'approval_policy="never"']
        # Values ride in the same word as their option ("--model=x"), so none can be read as an option.
        model = spec.model or self.config.default_model
        if model:
            validate_model(model)
            argv.append(f"--model={model}")
        if spec.thinking:
            if spec.thinking not in REASONING_EFFORTS:
                raise InvalidArgument("session_settings.code.providers.codex.thinking",
                                      f"unknown reasoning effort {spec.thinking!r}")
            argv += ["-c", f'model_reasoning_effort="{spec.thinking}"']
        argv += args
        if spec.resume_id:
            validate_provider_session_id(spec.resume_id)
            argv += ["resume", spec.resume_id]
        # "--" keeps a prompt that starts with "-" from being read as an option.
        return argv + ["--", spec.prompt or ""]

    # -- parsing ---------------------------------------------------------------------------------

    def _tool_id(self, item_id: str) -> str:
        # codex numbers items per process (item_0, item_1 …); make ids unique per turn.
        return f"{item_id}@{self._turn_key}"

    def parse_obj(self, data: dict[str, Any]) -> list[AgentEvent]:
        kind = data.get("type")
        if kind == "thread.started":
            tid = data.get("thread_id") or None
            if tid == self._announced_thread:
                return []  # every resumed turn announces the same thread again
            self._announced_thread = tid
            ev = system_text("session started", raw_type="thread.started")
            ev.provider_session_id = tid
            return [ev]
        if kind == "turn.started":
            self._turn_key = uuid.uuid4().hex[:8]
            self._open_tools.clear()
            return []
        if kind == "turn.completed":
            return [AgentEvent(role="system", content={"type": "system", "message": "turn completed"},
                               metadata={"raw_type": kind, "usage": data.get("usage")}, turn_complete=True)]
        if kind == "turn.failed":
            err = data.get("error") or {}
            message = str(err.get("message") if isinstance(err, dict) else err) or "turn failed"
            return [AgentEvent(role="system", content={"type": "error", "message": message},
                               metadata={"raw_type": kind}, turn_complete=True, turn_error=message)]
        if kind == "error":
            return [AgentEvent(role="system", content={"type": "error", "message": str(data.get("message", ""))},
                               metadata={"raw_type": kind})]
        if kind in ("item.started", "item.updated", "item.completed"):
            item = data.get("item") or {}
            return self._item(kind, item)
        return []

    def _item(self, kind: str, item: dict[str, Any]) -> list[AgentEvent]:
        itype = item.get("type")
        meta = {"raw_type": f"{kind}/{itype}"}
        if itype == "agent_message":
            if kind != "item.completed":
                return []
            return [AgentEvent(role="assistant", content={"type": "text", "text": item.get("text", "")},
                               metadata=meta)]
        if itype == "error":
            return [AgentEvent(role="system", content={"type": "error", "message": item.get("message", "")},
                               metadata=meta)]
        if itype in ("command_execution", "file_change", "mcp_tool_call", "web_search"):
            return self._tool(kind, item, meta)
        return []  # reasoning, todo_list …: not part of the conversation record

    def _tool(self, kind: str, item: dict[str, Any], meta: dict[str, Any]) -> list[AgentEvent]:
        itype = item.get("type")
        tool_id = self._tool_id(str(item.get("id", "")))
        if itype == "command_execution":
            name, arguments = "command_execution", {"command": item.get("command", "")}
        elif itype == "file_change":
            name, arguments = "file_change", {"changes": item.get("changes", [])}
        elif itype == "mcp_tool_call":
            name = f"{item.get('server', '')}.{item.get('tool', '')}"
            args = item.get("arguments")
            arguments = args if isinstance(args, dict) else {"arguments": args}
        else:
            name, arguments = "web_search", {"query": item.get("query", "")}
        events: list[AgentEvent] = []
        if tool_id not in self._open_tools:
            if kind == "item.updated":
                return []
            self._open_tools.add(tool_id)
            events.append(AgentEvent(role="assistant", content={
                "type": "tool_use", "name": name, "tool_use_id": tool_id, "arguments": arguments}, metadata=meta))
        if kind != "item.completed":
            return events
        self._open_tools.discard(tool_id)
        status = item.get("status")
        if itype == "command_execution":
            exit_code = item.get("exit_code")
            output: Any = item.get("aggregated_output", "")
            ok = status == "completed" and exit_code in (0, None)
            result_meta = {**meta, "exit_code": exit_code}
        elif itype == "mcp_tool_call":
            output = item.get("result") if item.get("error") is None else item.get("error")
            ok = status == "completed" and item.get("error") is None
            result_meta = dict(meta)
        else:
            output = {"status": status, **({"changes": item["changes"]} if "changes" in item else {})}
            ok = status in ("completed", None)
            result_meta = dict(meta)
        events.append(AgentEvent(role="tool", content={
            "type": "tool_result", "tool_use_id": tool_id, "output": output, "is_error": not ok, "success": ok},
            metadata=result_meta))
        return events
