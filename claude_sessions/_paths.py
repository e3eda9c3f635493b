"""Where Claude Code keeps its session files: ``$CLAUDE_CONFIG_DIR/projects/<sanitized cwd>/<id>.jsonl``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["claude_config_dir", "claude_project_dir", "sanitize_project_path"]

_MAX_DIR_NAME = 200  # claude shortens longer project directory names and appends a hash


def _js_string_hash(text: str) -> int:
    """Java-style 32-bit string hash over UTF-16 code units (what claude uses for long names)."""
    units = text.encode("utf-16-le", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = (h * 31 + int.from_bytes(units[i : i + 2], "little")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def sanitize_project_path(path: str) -> str:
    """Claude's project directory name for a cwd: every non-[A-Za-z0-9] UTF-16 unit becomes '-'."""
    units = path.encode("utf-16-le", "surrogatepass")
    chars = []
    for i in range(0, len(units), 2):
        code = int.from_bytes(units[i : i + 2], "little")
        chars.append(chr(code) if code < 128 and chr(code).isalnum() else "-")
    name = "".join(chars)
    if len(name) <= _MAX_DIR_NAME:
        return name
    return f"{name[:_MAX_DIR_NAME]}-{_base36(abs(_js_string_hash(path)))}"


def claude_config_dir(config_dir: Path | None = None) -> Path:
    """The argument, else $CLAUDE_CONFIG_DIR, else ~/.claude."""
    if config_dir is not None:
        return Path(config_dir).expanduser()
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".claude"


def claude_project_dir(worktree: Path, config_dir: Path | None = None) -> Path:
    """The directory where claude started in `worktree` keeps its session files."""
    return claude_config_dir(config_dir) / "projects" / sanitize_project_path(os.path.realpath(worktree))
