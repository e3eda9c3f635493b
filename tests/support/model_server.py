"""A scripted model server for tests: speaks the Anthropic Messages API (claude) and
the OpenAI Responses API (codex) on 127.0.0.1, with answers chosen by the test.

Tests add rules (`server.script(...)`); a request is matched on the latest real user
text of the conversation. A rule may first answer with a tool call that writes a file
(rendered per API: claude's `Write` tool, codex's `exec` code-mode tool running
`exec_command`), then — once the tool result comes back — with its text. Without a
matching rule the answer is ``ok: <user text>``. Every request body is recorded.
"""

from __future__ import annotations

import gzip
import json
import select
import shlex
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ModelServer", "RecordedRequest", "Rule"]


@dataclass
class Rule:
    """One scripted answer, used when the latest user text contains `contains`."""

    contains: str
    text: str | None = None  # final answer; default "ok: <user text>"
    write_file: tuple[str, str] | None = None  # (path, content): a tool call before the text
    tool: tuple[str, dict[str, Any]] | None = None  # (name, input): any tool call before the text (anthropic)
    command: str | None = None  # a shell command to run before the text (claude's Bash, codex's exec_command)
    delay: float = 0.0  # seconds to stall after the first streamed bytes (for interrupts)
    hits: int = 0


@dataclass
class RecordedRequest:
    """A request the server received."""

    api: str  # "anthropic" | "openai" | "other"
    path: str
    body: dict[str, Any]
    side: bool  # a side request (title, quota, count_tokens …), not a conversation turn
    user_text: str = ""
    after_tool: bool = False

    def text_dump(self) -> str:
        """The whole body as text, for `in` checks on history."""
        return json.dumps(self.body)


@dataclass
class _Conversation:
    user_text: str
    after_tool: bool
    tool_output: str = ""


class ModelServer:
    """Threaded HTTP server; usable from sync and async tests. Call `close()` when done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.rules: list[Rule] = []
        self.requests: list[RecordedRequest] = []
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="model-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(
        self,
        contains: str,
        *,
        text: str | None = None,
        write_file: tuple[str, str] | None = None,
        delay: float = 0.0,
        tool: tuple[str, dict[str, Any]] | None = None,
        command: str | None = None,
    ) -> Rule:
        """Add a rule (first matching rule wins)."""
        rule = Rule(contains=contains, text=text, write_file=write_file, delay=delay, tool=tool, command=command)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset(self) -> None:
        """Forget rules and recorded requests."""
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    def turn_requests(self, api: str | None = None) -> list[RecordedRequest]:
        """Recorded conversation requests (side requests left out)."""
        with self._lock:
            return [r for r in self.requests if not r.side and (api is None or r.api == api)]

    def close(self) -> None:
        """Stop serving; stalled answers give up at once."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- used by the handler ------------------------------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _match(self, user_text: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.contains in user_text:
                    rule.hits += 1
                    return rule
        return None

    def _stall(self, conn: socket.socket, seconds: float) -> None:
        """Wait `seconds`, but give up when the server closes or the client hangs up."""
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                if not conn.recv(1, socket.MSG_PEEK):
                    raise ConnectionAbortedError("the client went away")
                self._closing.wait(0.05)  # the client sent more; nothing to do with it


def _real_text(text: str) -> bool:
    """Texts the CLIs inject (reminders, environment context) look like one XML-ish block."""
    s = text.strip()
    if s.startswith("<") and s.endswith(">"):
        return False
    return not s.startswith("# AGENTS.md instructions")


def _anthropic_conversation(body: dict[str, Any]) -> _Conversation:
    messages = [m for m in body.get("messages", []) if m.get("role") in ("user", "assistant")]
    after_tool = False
    tool_output = ""
    if messages and messages[-1].get("role") == "user":
        content = messages[-1].get("content")
        if isinstance(content, list):
            results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
            if results:
                after_tool = True
                out = results[-1].get("content")
                tool_output = out if isinstance(out, str) else json.dumps(out)
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            if _real_text(content):
                return _Conversation(content, after_tool, tool_output)
            continue
        texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        texts = [t for t in texts if _real_text(t)]
        if texts:
            return _Conversation(texts[-1], after_tool, tool_output)
    return _Conversation("", after_tool, tool_output)


def _openai_conversation(body: dict[str, Any]) -> _Conversation:
    items = body.get("input", [])
    if isinstance(items, str):
        return _Conversation(items, False)
    convo = [i for i in items if i.get("role") not in ("developer", "system")]
    after_tool = False
    tool_output = ""
    if convo and convo[-1].get("type") in ("function_call_output", "custom_tool_call_output"):
        after_tool = True
        out = convo[-1].get("output")
        tool_output = out if isinstance(out, str) else json.dumps(out)
    for item in reversed(convo):
        if item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts = [content]
        else:
            texts = [
                c.get("text", "")
                for c in content or []
                if isinstance(c, dict) and c.get("type") in ("input_text", "text")
            ]
        texts = [t for t in texts if _real_text(t)]
        if texts:
            return _Conversation(texts[-1], after_tool, tool_output)
    return _Conversation("", after_tool, tool_output)


def _codex_write_cmd(path: str, content: str) -> str:
    """The shell command codex runs to write the file (the test's text, quoted)."""
    return f"printf %s {shlex.quote(content)} > {shlex.quote(path)}"


def _codex_exec_js(cmd: str) -> str:
    """Code-mode source for codex's `exec` tool (the default model's only tool): run `cmd` through
    exec_command."""
    return f"const r = await tools.exec_command({json.dumps({'cmd': cmd, 'login': False})});\ntext(r.output ?? '');\n"


def _make_handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        # -- plumbing --------------------------------------------------------------------------

        def _read_json(self) -> dict[str, Any]:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-encoding", "").lower() == "gzip":
                raw = gzip.decompress(raw)
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

        def _send_json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _start_sse(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True

        def _event(self, name: str, data: dict[str, Any]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def do_GET(self) -> None:
            try:
                if self.path.split("?")[0].rstrip("/").endswith("/models"):
                    self._send_json(200, {"object": "list", "data": [], "models": []})
                else:
                    self._send_json(404, {"error": {"type": "not_found", "message": self.path}})
            except OSError:
                self.close_connection = True

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_POST(self) -> None:
            try:
                self._post()
            except OSError:
                # The client went away (e.g. an interrupted turn); nothing to answer.
                self.close_connection = True

        def _post(self) -> None:
            path = self.path.split("?")[0]
            body = self._read_json()
            if path.endswith("/messages/count_tokens"):
                server._record(RecordedRequest("anthropic", path, body, side=True))
                self._send_json(200, {"input_tokens": 10})
            elif path.endswith("/messages"):
                self._anthropic(path, body)
            elif path.endswith("/responses"):
                self._openai(path, body)
            else:
                server._record(RecordedRequest("other", path, body, side=True))
                self._send_json(404, {"error": {"type": "not_found", "message": path}})

        # -- Anthropic Messages API ------------------------------------------------------------

        def _anthropic(self, path: str, body: dict[str, Any]) -> None:
            convo = _anthropic_conversation(body)
            side = not body.get("tools")
            server._record(RecordedRequest("anthropic", path, body, side, convo.user_text, convo.after_tool))
            rule = None if side else server._match(convo.user_text)
            model = body.get("model", "claude-test")
            tool: dict[str, Any] | None = None
            text = "ok" if side else f"ok: {convo.user_text}"
            if rule is not None:
                if rule.write_file and not convo.after_tool:
                    path_, content = rule.write_file
                    tool = {
                        "type": "tool_use",
                        "id": f"toolu_{uuid.uuid4().hex[:20]}",
                        "name": "Write",
                        "input": {"file_path": path_, "content": content},
                    }
                elif rule.tool and not convo.after_tool:
                    tool = {
                        "type": "tool_use",
                        "id": f"toolu_{uuid.uuid4().hex[:20]}",
                        "name": rule.tool[0],
                        "input": rule.tool[1],
                    }
                elif rule.command and not convo.after_tool:
                    tool = {
                        "type": "tool_use",
                        "id": f"toolu_{uuid.uuid4().hex[:20]}",
                        "name": "Bash",
                        "input": {"command": rule.command, "description": "run a command"},
                    }
                elif rule.text is not None:
                    text = rule.text
            usage = {
                "input_tokens": 12,
                "output_tokens": 7,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            }
            blocks = [tool] if tool else [{"type": "text", "text": text}]
            stop = "tool_use" if tool else "end_turn"
            msg_id = f"msg_{uuid.uuid4().hex[:24]}"
            if not body.get("stream"):
                self._send_json(
                    200,
                    {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": blocks,
                        "stop_reason": stop,
                        "stop_sequence": None,
                        "usage": usage,
                    },
                )
                return
            self._start_sse()
            self._event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**usage, "output_tokens": 1},
                    },
                },
            )
            if rule is not None and rule.delay and not tool:
                server._stall(self.connection, rule.delay)
            if tool:
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {**tool, "input": {}}},
                )
                self._event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(tool["input"])},
                    },
                )
            else:
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
                self._event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                )
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
            self._event("message_stop", {"type": "message_stop"})

        # -- OpenAI Responses API --------------------------------------------------------------

        def _openai(self, path: str, body: dict[str, Any]) -> None:
            convo = _openai_conversation(body)
            side = not convo.user_text and not convo.after_tool
            server._record(RecordedRequest("openai", path, body, side, convo.user_text, convo.after_tool))
            rule = None if side else server._match(convo.user_text)
            text = f"ok: {convo.user_text}"
            item: dict[str, Any]
            offered = {t.get("name") for t in body.get("tools", []) if isinstance(t, dict)}
            shell = None
            if rule is not None and not convo.after_tool:
                shell = _codex_write_cmd(*rule.write_file) if rule.write_file else rule.command
            if shell is not None and "exec" not in offered and "exec_command" in offered:
                # Models whose tool set has exec_command as a plain function (e.g. gpt-5.1-codex-max).
                item = {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:20]}",
                    "call_id": f"call_{uuid.uuid4().hex[:20]}",
                    "name": "exec_command",
                    "arguments": json.dumps({"cmd": shell, "login": False}),
                    "status": "completed",
                }
            elif shell is not None:
                item = {
                    "type": "custom_tool_call",
                    "id": f"ctc_{uuid.uuid4().hex[:20]}",
                    "call_id": f"call_{uuid.uuid4().hex[:20]}",
                    "name": "exec",
                    "namespace": "functions",
                    "input": _codex_exec_js(shell),
                    "status": "completed",
                }
            else:
                if rule is not None and rule.text is not None:
                    text = rule.text
                item = {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex[:20]}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            resp_id = f"resp_{uuid.uuid4().hex[:20]}"
            usage = {
                "input_tokens": 21,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 9,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 30,
            }
            base = {
                "id": resp_id,
                "object": "response",
                "created_at": int(time.time()),
                "model": body.get("model", "gpt-test"),
            }
            if not body.get("stream"):
                self._send_json(200, {**base, "status": "completed", "output": [item], "usage": usage})
                return
            self._start_sse()
            seq = iter(range(1_000_000))
            self._event(
                "response.created",
                {
                    "type": "response.created",
                    "sequence_number": next(seq),
                    "response": {**base, "status": "in_progress", "output": []},
                },
            )
            if item["type"] == "message":
                self._event(
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "sequence_number": next(seq),
                        "output_index": 0,
                        "item": {**item, "status": "in_progress", "content": []},
                    },
                )
                if rule is not None and rule.delay:
                    server._stall(self.connection, rule.delay)
                self._event(
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": next(seq),
                        "item_id": item["id"],
                        "output_index": 0,
                        "content_index": 0,
                        "delta": text,
                    },
                )
            else:
                self._event(
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "sequence_number": next(seq),
                        "output_index": 0,
                        "item": {**item, "status": "in_progress", "input": ""},
                    },
                )
            self._event(
                "response.output_item.done",
                {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0, "item": item},
            )
            self._event(
                "response.completed",
                {
                    "type": "response.completed",
                    "sequence_number": next(seq),
                    "response": {**base, "status": "completed", "output": [item], "usage": usage},
                },
            )

    return Handler
