"""Claude Code's own session files, read as Berth messages and written from them.

Shared by the daemon (which writes imported conversations where `claude --resume` finds them), the
control plane (which imports and exports the files over REST) and the CLI (which finds them on disk).
It depends on nothing else in Berth.
"""

from claude_sessions._errors import SessionFileError
from claude_sessions._paths import claude_config_dir, claude_project_dir, sanitize_project_path
from claude_sessions._read import SessionFile, looks_like_claude_session_file, read_session_file
from claude_sessions._write import (
    CLAUDE_CODE_VERSION,
    IMPORTED_OPENING_TEXT,
    MISSING_RESULT_TEXT,
    build_session_lines,
)

__all__ = [
    "CLAUDE_CODE_VERSION",
    "IMPORTED_OPENING_TEXT",
    "MISSING_RESULT_TEXT",
    "SessionFile",
    "SessionFileError",
    "build_session_lines",
    "claude_config_dir",
    "claude_project_dir",
    "looks_like_claude_session_file",
    "read_session_file",
    "sanitize_project_path",
]
