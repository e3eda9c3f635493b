"""Events in a form every reader can carry: nesting and size bounded before an event is stored.

An agent's tool input may nest deeper than protobuf's Struct allows, and a tool's output may be far
larger than a gRPC message should be. Either would make the event unreadable over StreamEvents for
good (the stream would fail at that seq on every retry). Such an event is stored and sent in a
safe form instead: too-deep parts become their JSON text, too-large strings are cut, and the event's
metadata says what was changed (`carriable`).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_EVENT_BYTES", "make_carriable"]

# JSON levels a value may nest (protobuf decoders stop near 32 dict levels under an Event).
MAX_DEPTH = 20
# An event's content and metadata together, as JSON (well under gRPC's usual 4 MiB receive limit).
MAX_EVENT_BYTES = 1024 * 1024
_CUT_MARK = "\n… [cut by berth: {n} more bytes]"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _flatten_deep(value: Any, depth: int, path: str, notes: list[str]) -> Any:
    """`value` with every container nested past MAX_DEPTH replaced by its JSON text."""
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            notes.append(f"{path}: nested deeper than {MAX_DEPTH} levels, kept as JSON text")
            return _json_text(value)
        if isinstance(value, dict):
            return {str(k): _flatten_deep(v, depth + 1, f"{path}.{k}", notes) for k, v in value.items()}
        return [_flatten_deep(v, depth + 1, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{path}: not a finite number, kept as text")
        return str(value)
    return value


def _size(content: dict[str, Any], metadata: dict[str, Any]) -> int:
    return len(_json_text(content).encode()) + len(_json_text(metadata).encode())


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return kept + _CUT_MARK.format(n=len(data) - len(kept.encode()))


def _string_leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[int, tuple[Any, ...]]]:
    """(UTF-8 size, path) of every string in `value`."""
    if isinstance(value, str):
        return [(len(value.encode()), path)]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _string_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _string_leaves(v, (*path, i))]
    return []


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _shrink(content: dict[str, Any], metadata: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Cut the largest strings of `content` (then, if need be, whole fields) until the event fits."""
    budget = MAX_EVENT_BYTES - 64 * 1024  # room for the other fields and the notes
    for size, path in sorted(_string_leaves(content), reverse=True):
        excess = _size(content, metadata) - budget
        if excess <= 0:
            break
        keep = max(size - excess - len(_CUT_MARK) - 32, 1024)  # the mark itself takes room too
        if size <= keep:
            continue
        content = _replace(content, path, _cut(_get(content, path), keep))
        notes.append(f"content.{'.'.join(map(str, path))}: {size} bytes, cut to {keep}")
    for key in sorted(content, key=lambda k: -len(_json_text(content[k]))):
        if _size(content, metadata) <= budget:
            break
        value, room = content[key], budget // 2
        if isinstance(value, dict | list):
            text = _cut(_json_text(value), room)
            # Struct fields stay objects; anything else may become text.
            content = {**content, key: {"cut_by_berth": text} if isinstance(value, dict) else text}
            notes.append(f"content.{key}: too large, kept as cut JSON text")
    if _size(content, metadata) > MAX_EVENT_BYTES:
        notes.append("metadata: too large, dropped")
        metadata.clear()
    return content


def make_carriable(content: dict[str, Any], metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(content, metadata) as they can be stored and streamed; unchanged when they already can."""
    notes: list[str] = []
    content = _flatten_deep(content, 0, "content", notes)
    metadata = _flatten_deep(metadata, 0, "metadata", notes)
    if _size(content, metadata) > MAX_EVENT_BYTES:
        content = _shrink(content, metadata, notes)
    if notes:
        metadata = {**metadata, "carriable": notes}
    return content, metadata
