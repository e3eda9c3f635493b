"""Validation of names that become git branches, directories or file names.

Pure Python (no `git` subprocess): these checks run on every launch request.
"""

from __future__ import annotations

import re

from daemon.errors import InvalidArgument

__all__ = [
    "MAX_WORKTREE_NAME_BYTES",
    "validate_base_ref",
    "validate_model",
    "validate_owner",
    "validate_provider_session_id",
    "validate_session_id",
    "validate_tool_rule",
    "validate_worktree_name",
]

MAX_WORKTREE_NAME_BYTES = 200
# A worktree's directory is its name with '/' flattened to '--': one path component.
_MAX_COMPONENT_BYTES = 255

# Characters git forbids anywhere in a ref name (see git-check-ref-format(1)).
_FORBIDDEN_CHARS = frozenset(" ~^:?*[\\")
_SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Claude session ids and Codex thread ids are both UUIDs (codex: v7), written in lower or upper hex.
_PROVIDER_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# Model names as the CLIs know them: "haiku", "claude-sonnet-4-5", "gpt-5.1-codex-max", "openai/gpt-oss:20b".
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\[\]@+-]{0,199}")
_OWNER = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
# A tool rule as claude writes them: "Read", "Bash(npm test:*)", "mcp__server__tool", "WebFetch(domain:x.org)".
_TOOL_RULE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}(\([^\x00-\x1f\x7f()]{1,400}\))?")


def _problem(name: str) -> str | None:
    """Why `name` is not an acceptable branch name, or None when it is."""
    if not name:
        return "must not be empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_WORKTREE_NAME_BYTES:
        return f"must be at most {MAX_WORKTREE_NAME_BYTES} bytes"
    if len(name.replace("/", "--").encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES:
        return f"must be at most {_MAX_COMPONENT_BYTES} bytes with each '/' counted as two (it names one directory)"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid UTF-8 text (no lone surrogates)"
    for ch in name:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "must not contain control characters"
        if ch in _FORBIDDEN_CHARS:
            return f"must not contain {ch!r}"
    if name.startswith("/"):
        return "must not be an absolute path or start with '/'"
    if name.startswith("-"):
        return "must not start with '-'"
    if name.endswith("/"):
        return "must not end with '/'"
    if name.endswith("."):
        return "must not end with '.'"
    if name == "@":
        return "must not be '@'"
    if name == "HEAD":
        return "must not be 'HEAD'"
    if ".." in name:
        return "must not contain '..'"
    if "@{" in name:
        return "must not contain '@{'"
    if "//" in name:
        return "must not contain '//'"
    for component in name.split("/"):
        if component.startswith("."):
            return "path components must not start with '.'"
        if component.endswith(".lock"):
            return "path components must not end with '.lock'"
    return None


def validate_worktree_name(name: str, field: str = "worktree_name") -> None:
    """Raise InvalidArgument(field, ...) unless `name` is a valid git branch name.

    Follows `git check-ref-format --branch` and is stricter in a few places:
    '@' and 'HEAD' are refused and the name is limited to 200 UTF-8 bytes.
    """
    if not isinstance(name, str):
        raise InvalidArgument(field, "must be a string")
    problem = _problem(name)
    if problem is not None:
        raise InvalidArgument(field, f"{problem} (got {name!r})")


def validate_session_id(value: str, field: str = "agent_session_id") -> None:
    """Raise InvalidArgument(field, ...) unless `value` is safe as a file name.

    Allowed: 1-128 characters from [A-Za-z0-9._-], not starting with '.'.
    """
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not _SESSION_ID.fullmatch(value):
        raise InvalidArgument(field, f"must be 1-128 characters from A-Z a-z 0-9 . _ - (got {value[:140]!r})")
    if value.startswith("."):
        raise InvalidArgument(field, f"must not start with '.' (got {value!r})")


def validate_provider_session_id(value: str, field: str = "resume_session_id") -> None:
    """Raise InvalidArgument(field, ...) unless `value` is a provider session id: a UUID.

    Claude Code session ids and Codex thread ids are UUIDs; nothing else may reach an
    agent's command line as one (a value such as "--dangerously-skip-permissions" would be
    read as an option).
    """
    if not isinstance(value, str) or not _PROVIDER_ID.fullmatch(value):
        raise InvalidArgument(field, f"must be a provider session id (a UUID) (got {str(value)[:140]!r})")


def validate_base_ref(value: str, field: str = "base_ref") -> None:
    """Raise InvalidArgument(field, ...) unless `value` is empty or could be a commit-ish (never an option).

    Whether the commit exists is git's to say, later."""
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    if value.startswith("-") or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidArgument(field, f"is not a valid commit-ish (got {value[:140]!r})")


def validate_model(value: str, field: str = "model") -> None:
    """Raise InvalidArgument(field, ...) unless `value` looks like a model name (never an option)."""
    if not isinstance(value, str) or not _MODEL.fullmatch(value):
        raise InvalidArgument(
            field,
            f"must be a model name: letters, digits and . _ : / [ ] @ + -, not starting with '-' "
            f"(got {str(value)[:140]!r})",
        )


def validate_owner(value: str, field: str = "owner") -> None:
    """Raise InvalidArgument(field, ...) unless `value` is empty or 1-200 printable characters."""
    if value and not _OWNER.fullmatch(value):
        raise InvalidArgument(field, "must be 1-200 printable characters")


def validate_tool_rule(value: str, field: str = "allowed_tools") -> None:
    """Raise InvalidArgument(field, ...) unless `value` is a tool rule: a tool name, optionally with
    `(specifier)`, e.g. "Bash(npm test:*)" (never an option: it starts with a letter)."""
    if not isinstance(value, str) or not _TOOL_RULE.fullmatch(value):
        raise InvalidArgument(field, f"must be a tool rule such as Read or Bash(npm test:*) (got {str(value)[:140]!r})")
