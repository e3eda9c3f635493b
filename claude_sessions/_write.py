"""Berth messages (the import document's shape) written as the lines of a Claude Code session file.

The line shape follows what claude 2.x writes itself (checked against the pinned CLI): one JSON object
per line, chained by ``parentUuid``; alternating user/assistant API messages in which every tool_use
is answered by its tool_result in the next user message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from claude_sessions._errors import SessionFileError

__all__ = ["CLAUDE_CODE_VERSION", "IMPORTED_OPENING_TEXT", "MISSING_RESULT_TEXT", "build_session_lines"]

ROLES = ("user", "assistant", "tool", "system")
CONTENT_TYPES = ("text", "tool_use", "tool_result", "error", "system")
MISSING_RESULT_TEXT = "no result was recorded for this tool call"
IMPORTED_OPENING_TEXT = "(This conversation was imported; its first messages were the assistant's.)"
# The pinned CLI's version; claude records its own version on every line it writes.
CLAUDE_CODE_VERSION = "2.1.328"
_UUID_NAMESPACE = uuid.UUID("6f1c7f3e-4b8a-4e43-9d8e-2f3c9b1a7d10")


def _timestamp(value: Any, fallback: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as claude writes; `fallback` when absent or unparsable."""
    moment = fallback
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
            moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _tool_output_text(content: dict[str, Any]) -> str:
    output = content.get("output")
    if output is None:
        output = content.get("text") or content.get("message") or ""
    if isinstance(output, str):
        return output
    return json.dumps(output, ensure_ascii=False)


@dataclass
class _Item:
    """One content block of the input, with the side it belongs to."""

    side: str  # "assistant" | "user"
    block: dict[str, Any]
    timestamp: str
    model: str = ""


@dataclass
class _Message:
    role: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    timestamp: str = ""
    model: str = ""
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # user side: tool_use_id -> result


def _items(messages: Iterable[Any], now: datetime) -> list[_Item]:
    """Validate the seed-shaped messages and turn them into blocks; skips system/error content."""
    items: list[_Item] = []
    seen_tool_ids: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise SessionFileError(where, "must be an object")
        role = msg.get("role")
        if role not in ROLES:
            raise SessionFileError(f"{where}.role", f"must be one of {', '.join(ROLES)} (got {role!r})")
        content = msg.get("content")
        if isinstance(content, str):
            content = {"type": "text", "text": content}
        if not isinstance(content, dict):
            raise SessionFileError(f"{where}.content", "must be an object")
        ctype = content.get("type") or "text"
        if ctype not in CONTENT_TYPES:
            raise SessionFileError(
                f"{where}.content.type", f"must be one of {', '.join(CONTENT_TYPES)} (got {ctype!r})"
            )
        metadata: dict[str, Any] = msg["metadata"] if isinstance(msg.get("metadata"), dict) else {}
        # Keep input order even when timestamps are missing: fall back to now + i ms.
        ts = _timestamp(msg.get("created_at"), now + timedelta(milliseconds=i))
        if role == "system" or ctype in ("system", "error"):
            continue
        if metadata.get("parent_tool_use_id"):
            continue  # a subagent's own turns (claude's sidechain): not part of the main conversation
        if ctype == "text":
            text = content.get("text")
            if text is None:
                text = ""
            if not isinstance(text, str):
                raise SessionFileError(f"{where}.content.text", "must be a string")
            if not text or role == "tool":
                continue
            side = "assistant" if role == "assistant" else "user"
            items.append(_Item(side, {"type": "text", "text": text}, ts, str(metadata.get("model") or "")))
        elif ctype == "tool_use":
            arguments = content.get("arguments")
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise SessionFileError(f"{where}.content.arguments", "must be an object")
            name = content.get("name")
            if not isinstance(name, str) or not name:
                raise SessionFileError(f"{where}.content.name", "a tool_use needs the tool's name")
            tool_id = content.get("tool_use_id") or f"toolu_imported_{i}"
            if not isinstance(tool_id, str):
                raise SessionFileError(f"{where}.content.tool_use_id", "must be a string")
            if tool_id in seen_tool_ids:
                continue  # the API refuses duplicate tool_use ids; keep the first
            seen_tool_ids.add(tool_id)
            block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": name, "input": arguments}
            items.append(_Item("assistant", block, ts, str(metadata.get("model") or "")))
        else:  # tool_result
            tool_id = content.get("tool_use_id")
            if not isinstance(tool_id, str) or not tool_id:
                continue  # cannot be paired with any tool_use
            is_error = bool(content.get("is_error")) or content.get("success") is False
            block = {
                "type": "tool_result",
                "tool_use_id": tool_id,
                "content": _tool_output_text(content),
                "is_error": is_error,
            }
            items.append(_Item("user", block, ts))
    return items


def _missing_result(tool_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": MISSING_RESULT_TEXT, "is_error": True}


def _pair_messages(items: list[_Item]) -> list[_Message]:
    """Merge blocks into alternating messages; every tool_use gets its result right after.

    Consecutive blocks of one side merge. A tool_result goes into the user message
    right after its tool_use's assistant message (results first, then text, as the
    API requires); results for unknown or earlier tool_uses are dropped and
    missing ones become error results.
    """
    out: list[_Message] = []

    def open_tool_ids() -> list[str]:
        # The tool_use ids of the assistant message the current/next user message answers.
        for msg in reversed(out):
            if msg.role == "assistant":
                return [b["id"] for b in msg.blocks if b["type"] == "tool_use"]
        return []

    for item in items:
        last = out[-1] if out else None
        if item.side == "assistant":
            if last is not None and last.role == "assistant":
                last.blocks.append(item.block)
                last.model = last.model or item.model
            else:
                out.append(_Message("assistant", [item.block], item.timestamp, item.model))
            continue
        block = item.block
        if block["type"] == "tool_result":
            if last is None or block["tool_use_id"] not in open_tool_ids():
                continue
            if last.role == "assistant":
                last = _Message("user", [], item.timestamp)
                out.append(last)
            last.results.setdefault(block["tool_use_id"], block)
            continue
        if last is not None and last.role == "user":
            last.blocks.append(block)
        else:
            out.append(_Message("user", [block], item.timestamp))

    # Fill in results: each assistant message with tool_uses is followed by a user message with all of them.
    final: list[_Message] = []
    for idx, msg in enumerate(out):
        final.append(msg)
        if msg.role != "assistant":
            continue
        tool_ids = [b["id"] for b in msg.blocks if b["type"] == "tool_use"]
        if not tool_ids:
            continue
        nxt = out[idx + 1] if idx + 1 < len(out) else None
        if nxt is None or nxt.role != "user":
            nxt = _Message("user", [], msg.timestamp)
            final.append(nxt)
        nxt.results = {tid: nxt.results.get(tid) or _missing_result(tid) for tid in tool_ids}
    for msg in final:
        if msg.role == "user" and msg.results:
            msg.blocks = list(msg.results.values()) + msg.blocks
    if final and final[0].role == "assistant":
        # The Messages API wants a conversation to open with a user turn.
        final.insert(0, _Message("user", [{"type": "text", "text": IMPORTED_OPENING_TEXT}], final[0].timestamp))
    return final


def build_session_lines(
    cwd: str,
    session_id: str,
    messages: list[dict[str, Any]],
    *,
    now: datetime | None = None,
    model: str = "",
    git_branch: str = "",
) -> list[dict[str, Any]]:
    """The session file's lines (as dicts) for seed-shaped `messages`, as claude started in `cwd` writes
    them; SessionFileError naming the message for what cannot be written."""
    if not isinstance(messages, list):
        raise SessionFileError("messages", "must be a list")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    lines: list[dict[str, Any]] = []
    parent: str | None = None
    for n, msg in enumerate(_pair_messages(_items(messages, now))):
        line_uuid = str(uuid.uuid5(_UUID_NAMESPACE, f"{session_id}/{n}"))
        if msg.role == "assistant":
            has_tools = any(b["type"] == "tool_use" for b in msg.blocks)
            body: dict[str, Any] = {
                "id": f"msg_imported_{uuid.uuid5(_UUID_NAMESPACE, line_uuid).hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": msg.model or model or "imported",
                "content": msg.blocks,
                "stop_reason": "tool_use" if has_tools else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 0,
                },
            }
        else:
            body = {"role": "user", "content": msg.blocks}
        line: dict[str, Any] = {
            "parentUuid": parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": cwd,
            "sessionId": session_id,
            "version": CLAUDE_CODE_VERSION,
        }
        if git_branch:
            line["gitBranch"] = git_branch
        line.update({"type": msg.role, "message": body, "uuid": line_uuid, "timestamp": msg.timestamp})
        lines.append(line)
        parent = line_uuid
    return lines
