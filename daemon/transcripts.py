"""Imported conversations written as Claude Code session files, so `claude --resume <id>` continues them.

The file's shape lives in the shared `claude_sessions` package; this module validates the daemon's
input and writes the file privately and atomically where claude started in the worktree looks.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from claude_sessions import (
    IMPORTED_OPENING_TEXT,
    MISSING_RESULT_TEXT,
    SessionFileError,
    build_session_lines,
    claude_config_dir,
    claude_project_dir,
    sanitize_project_path,
)
from daemon.errors import InvalidArgument, NotFound
from daemon.validation import validate_session_id

__all__ = [
    "IMPORTED_OPENING_TEXT",
    "MISSING_RESULT_TEXT",
    "build_claude_transcript",
    "claude_config_dir",
    "claude_project_dir",
    "sanitize_project_path",
    "write_claude_transcript",
]


def build_claude_transcript(
    worktree: Path,
    session_id: str,
    messages: list[dict[str, Any]],
    *,
    now: datetime | None = None,
    model: str = "",
    git_branch: str = "",
) -> list[dict[str, Any]]:
    """The session file's lines (as dicts) for `messages` in `worktree`; validates the input."""
    validate_session_id(session_id, "provider_session_id")
    try:
        return build_session_lines(
            os.path.realpath(worktree), session_id, messages, now=now, model=model, git_branch=git_branch
        )
    except SessionFileError as exc:
        raise InvalidArgument(exc.where, exc.message) from None


def write_claude_transcript(
    worktree: Path,
    session_id: str,
    messages: list[dict[str, Any]],
    *,
    config_dir: Path | None = None,
    now: datetime | None = None,
    model: str = "",
    git_branch: str = "",
) -> Path:
    """Write `messages` (the import document's shape) as Claude session `session_id` for `worktree`.

    Returns the file written (atomically: temp file + rename; an existing file is replaced).
    """
    if not os.path.isdir(worktree):
        raise NotFound(f"worktree not found: {worktree}")
    lines = build_claude_transcript(worktree, session_id, messages, now=now, model=model, git_branch=git_branch)
    directory = claude_project_dir(Path(worktree), config_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{session_id}.jsonl"
    fd, tmp = tempfile.mkstemp(prefix=f".{session_id}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
