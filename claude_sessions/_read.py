"""A Claude Code session file (claude 2.x, as found in ``~/.claude/projects``) read as Berth messages.

The file holds one JSON object per line. Only ``user`` and ``assistant`` lines are conversation; the
rest (summaries, file-history snapshots, queue operations, progress, system notices) are skipped and
counted. The conversation is the chain of ``parentUuid`` links from the last message back to the first,
so turns abandoned by a rewind are left out; a compaction boundary is crossed through its
``logicalParentUuid``, so the history before a ``/compact`` stays. Sidechains (a subagent's own turns)
and meta lines (caveats, expanded skill text) are skipped; the compaction summary is kept as a
``system`` message, which a resumed conversation does not send (the full history is there instead).

Blocks Berth's messages have no type for (thinking, images, documents, anything newer) are kept in the
metadata of the message made from their line (``claude_code_blocks``) and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from claude_sessions._errors import SessionFileError

__all__ = ["SessionFile", "looks_like_claude_session_file", "read_session_file"]

_COMMAND_MARKERS = ("<command-name>", "<command-message>", "<local-command-stdout>", "<local-command-stderr>")


@dataclass
class SessionFile:
    """What a session file holds: its session id and cwd (from its lines), the messages, and what was left."""

    session_id: str | None = None
    cwd: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> lines
    kept_as_metadata: Counter[str] = field(default_factory=Counter)  # block type -> blocks


def looks_like_claude_session_file(first_line: dict[str, Any]) -> bool:
    """Whether a parsed first line is Claude Code's (a typed line) rather than a Berth message (a role)."""
    return "role" not in first_line and isinstance(first_line.get("type"), str)


def _parse_lines(lines: Iterable[str | bytes]) -> list[dict[str, Any]]:
    records = []
    for n, raw in enumerate(lines, 1):
        text = raw.decode("utf-8", "strict") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise SessionFileError(f"line {n}", f"is not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise SessionFileError(f"line {n}", "must be a JSON object")
        records.append(record)
    return records


def _conversation(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records on the chain ending at the last message line, in order; file order when links break."""
    by_uuid = {r["uuid"]: r for r in records if isinstance(r.get("uuid"), str)}
    leaf = next(
        (r for r in reversed(records) if r.get("type") in ("user", "assistant") and not r.get("isSidechain")),
        None,
    )
    if leaf is None or not isinstance(leaf.get("uuid"), str):
        return records
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    node: dict[str, Any] | None = leaf
    while node is not None:
        seen.add(node["uuid"])
        chain.append(node)
        parent = node.get("parentUuid") or node.get("logicalParentUuid")
        if parent is None:
            break
        if parent in seen:  # a loop: trust the file's order instead
            return records
        node = by_uuid.get(parent)
        if node is None:  # a broken link (a truncated or hand-edited file)
            return records
    chain.reverse()
    return chain


def _text_of(content: Any) -> str:
    """A tool_result's content as text: a string stays; text blocks join; other blocks are named."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type') or 'block'}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _messages_of(record: dict[str, Any], out: SessionFile) -> list[dict[str, Any]]:
    """The Berth messages of one user/assistant line (one per block it has a type for)."""
    message = record.get("message") if isinstance(record.get("message"), dict) else {}
    assert isinstance(message, dict)
    side = record["type"]
    line_id = str(record.get("uuid") or "")
    made: list[dict[str, Any]] = []
    unknown: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    if side == "assistant" and message.get("model") and message.get("model") != "<synthetic>":
        meta["model"] = message["model"]

    def add(role: str, content: dict[str, Any]) -> None:
        made.append({"role": role, "content": content, "metadata": dict(meta)})

    for block in _blocks(message):
        btype = block.get("type")
        if btype == "text":
            text = str(block.get("text") or "")
            if side == "user" and text.lstrip().startswith(_COMMAND_MARKERS):
                out.skipped["local command"] += 1
                continue
            if record.get("isApiErrorMessage"):
                add("system", {"type": "error", "message": text})
            elif record.get("isCompactSummary"):
                meta["compact_summary"] = True
                add("system", {"type": "system", "text": text})
            elif text:
                add(side, {"type": "text", "text": text})
        elif btype == "tool_use" and side == "assistant":
            args = block.get("input")
            add(
                "assistant",
                {
                    "type": "tool_use",
                    "name": str(block.get("name") or ""),
                    "tool_use_id": str(block.get("id") or ""),
                    "arguments": args if isinstance(args, dict) else {"input": args},
                },
            )
        elif btype == "tool_result" and side == "user":
            is_error = bool(block.get("is_error"))
            add(
                "tool",
                {
                    "type": "tool_result",
                    "tool_use_id": str(block.get("tool_use_id") or ""),
                    "output": _text_of(block.get("content")),
                    "is_error": is_error,
                    "success": not is_error,
                },
            )
        else:
            unknown.append(block)
            out.kept_as_metadata[str(btype or "untyped")] += 1
    if unknown:
        if not made:
            names = ", ".join(f"[{b.get('type') or 'block'}]" for b in unknown)
            add("system", {"type": "system", "text": names})
        made[0]["metadata"]["claude_code_blocks"] = unknown
    for k, m in enumerate(made):
        m["message_id"] = line_id if k == 0 else f"{line_id}:{k}"
        if isinstance(record.get("timestamp"), str):
            m["created_at"] = record["timestamp"]
    return made


def read_session_file(lines: Iterable[str | bytes]) -> SessionFile:
    """Read a Claude Code session file's lines; SessionFileError naming the line that is not JSON."""
    out = SessionFile()
    records = _parse_lines(lines)
    chain = _conversation(records)
    on_chain = {id(r) for r in chain}
    for record in records:
        if id(record) not in on_chain:
            rtype = record.get("type")
            if rtype not in ("user", "assistant"):
                out.skipped[str(rtype or "untyped")] += 1
            else:
                out.skipped["sidechain" if record.get("isSidechain") else "other branch"] += 1
    for record in chain:
        rtype = record.get("type")
        if rtype not in ("user", "assistant"):
            out.skipped[str(rtype or "untyped")] += 1
            continue
        if record.get("isSidechain"):
            out.skipped["sidechain"] += 1
            continue
        if out.session_id is None and isinstance(record.get("sessionId"), str):
            out.session_id = record["sessionId"]
        if out.cwd is None and isinstance(record.get("cwd"), str):
            out.cwd = record["cwd"]
        if record.get("isMeta"):
            out.skipped["meta"] += 1
            continue
        out.messages.extend(_messages_of(record, out))
    if out.session_id is None:
        out.session_id = next((r["sessionId"] for r in records if isinstance(r.get("sessionId"), str)), None)
    return out
