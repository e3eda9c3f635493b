"""Agent adapters: how to run each agent CLI and how to read what it prints."""

from __future__ import annotations

from daemon.agents.base import AgentAdapter, AgentEvent, TurnSpec
from daemon.agents.claude_code import ClaudeCodeAdapter
from daemon.agents.codex import CodexAdapter
from daemon.config import ProviderConfig
from daemon.errors import InvalidArgument

__all__ = ["ADAPTERS", "AgentAdapter", "AgentEvent", "ClaudeCodeAdapter", "CodexAdapter", "TurnSpec", "adapter_for"]

ADAPTERS: dict[str, type[AgentAdapter]] = {"claude_code": ClaudeCodeAdapter, "codex": CodexAdapter}


def adapter_for(provider: str, config: ProviderConfig) -> AgentAdapter:
    """A fresh adapter (one per session: adapters remember ids across lines) for `provider`."""
    cls = ADAPTERS.get(provider)
    if cls is None:
        raise InvalidArgument(
            "session_settings.code.default_provider", f"unknown provider {provider!r}; known: {sorted(ADAPTERS)}"
        )
    return cls(config)
