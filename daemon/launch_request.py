"""A launch request as the daemon takes it: the wire-independent fields and their checks.

`normalize_launch` fills the defaults and refuses (InvalidArgument naming the field) anything a launch must
not start with, before the supervisor creates anything.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from daemon.agents.base import PERMISSIONS
from daemon.agents.codex import REASONING_EFFORTS
from daemon.config import PROVIDERS, DaemonConfig
from daemon.errors import InvalidArgument
from daemon.validation import (
    validate_base_ref,
    validate_model,
    validate_owner,
    validate_provider_session_id,
    validate_session_id,
    validate_tool_rule,
    validate_worktree_name,
)

__all__ = ["MAX_APPROVAL_TIMEOUT_SECONDS", "MODES", "LaunchRequest", "normalize_launch"]

_PROVIDER_ALIASES = {
    "": "claude_code",
    "claude_code": "claude_code",
    "claude": "claude_code",
    "claude-code": "claude_code",
    "codex": "codex",
}
_THINKING = ("", *REASONING_EFFORTS)
MODES = ("agent", "plan")
# A pending approval waits at most this long when the launch sets a timeout (a day).
MAX_APPROVAL_TIMEOUT_SECONDS = 86400.0


@dataclass
class LaunchRequest:
    """A validated-on-entry launch, independent of the wire format."""

    repository: str
    workspace_id: str = ""
    worktree_name: str = ""
    base_ref: str = ""
    initial_prompt: str = ""
    provider: str = ""
    mode: str = ""
    model: str = ""
    thinking: str = ""
    resume_session_id: str = ""
    agent_session_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    permissions: str = ""  # one of PERMISSIONS; "" = "ask"
    allowed_tools: list[str] = field(default_factory=list)
    approval_timeout_seconds: float = 0.0
    max_turns: int = 0  # 0: no limit
    max_cost_usd: float = 0.0


def normalize_launch(req: LaunchRequest, config: DaemonConfig) -> LaunchRequest:
    """`req` with its defaults filled in; InvalidArgument naming the field for anything it must not be."""
    if not req.repository.strip():
        raise InvalidArgument("repository", "is required (a path on this machine or a clone URL)")
    provider = _PROVIDER_ALIASES.get(req.provider.strip().lower().replace(" ", "_"))
    if provider is None or provider not in PROVIDERS:
        raise InvalidArgument(
            "session_settings.code.default_provider",
            f"unknown provider {req.provider!r}; known: claude_code, codex",
        )
    req.provider = provider
    req.mode = req.mode or "agent"
    if req.mode not in MODES:
        raise InvalidArgument("session_settings.code.mode", f"unknown mode {req.mode!r}; known: {', '.join(MODES)}")
    req.permissions = req.permissions or "ask"
    if req.permissions not in PERMISSIONS:
        raise InvalidArgument(
            "session_settings.code.permissions",
            f"unknown permissions {req.permissions!r}; known: {', '.join(PERMISSIONS)}",
        )
    if len(req.allowed_tools) > 200:
        raise InvalidArgument("session_settings.code.allowed_tools", "at most 200 rules")
    for rule in req.allowed_tools:
        validate_tool_rule(rule, "session_settings.code.allowed_tools")
    if not (0 <= req.max_turns <= 1_000_000):
        raise InvalidArgument("session_settings.code.max_turns", "must be 0 (no limit) to 1000000")
    if not (0 <= req.max_cost_usd <= 1_000_000):  # also refuses NaN
        raise InvalidArgument("session_settings.code.max_cost_usd", "must be 0 (no limit) to 1000000")
    timeout = req.approval_timeout_seconds
    if not (0 <= timeout <= MAX_APPROVAL_TIMEOUT_SECONDS):  # also refuses NaN
        raise InvalidArgument(
            "session_settings.code.approval_timeout_seconds",
            f"must be 0 (no timeout) to {MAX_APPROVAL_TIMEOUT_SECONDS:g} seconds",
        )
    if req.thinking not in _THINKING:
        raise InvalidArgument(
            "session_settings.code.providers.codex.thinking",
            f"unknown reasoning effort {req.thinking!r}; known: {', '.join(t for t in _THINKING if t)}",
        )
    if req.agent_session_id:
        validate_session_id(req.agent_session_id, "agent_session_id")
    else:
        req.agent_session_id = "as-" + secrets.token_hex(8)
    validate_owner(req.owner)
    if req.resume_session_id:
        validate_provider_session_id(req.resume_session_id, "resume_session_id")
    if req.worktree_name:
        validate_worktree_name(req.worktree_name)
    else:
        req.worktree_name = f"berth/{req.agent_session_id}"
    validate_base_ref(req.base_ref)
    if req.model:
        validate_model(req.model, f"session_settings.code.providers.{provider}.model")
    else:
        req.model = config.provider(provider).default_model
    return req
