"""Point the real agent CLIs (pinned in node_modules/.bin) at the scripted model server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.config import ProviderConfig
from tests.support.leaks import processes

__all__ = [
    "CLAUDE_BIN",
    "CODEX_BIN",
    "CODEX_KEY_VAR",
    "CODEX_PROVIDER_NAME",
    "REPO_ROOT",
    "EventSink",
    "claude_env",
    "claude_provider_config",
    "codex_args",
    "codex_env",
    "codex_provider_config",
    "live_group_members",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CLAUDE_BIN = REPO_ROOT / "node_modules" / ".bin" / "claude"
CODEX_BIN = REPO_ROOT / "node_modules" / ".bin" / "codex"
CODEX_PROVIDER_NAME = "berthtest"
CODEX_KEY_VAR = "BERTH_TEST_OPENAI_KEY"


def _home_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }


def claude_env(base_url: str, home: Path) -> dict[str, str]:
    """Environment for `claude` talking to `base_url`, with its own HOME and config dir."""
    config_dir = home / ".claude"
    config_dir.mkdir(parents=True, exist_ok=True)
    return {
        **_home_env(home),
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


def codex_args(base_url: str) -> list[str]:
    """`codex exec` options that select the scripted server as the model provider."""
    p = f"model_providers.{CODEX_PROVIDER_NAME}"
    return [
        "-c",
        f"model_provider={CODEX_PROVIDER_NAME}",
        "-c",
        f"{p}.name={CODEX_PROVIDER_NAME}",
        "-c",
        f"{p}.base_url={base_url}/v1",
        "-c",
        f"{p}.wire_api=responses",
        "-c",
        f"{p}.env_key={CODEX_KEY_VAR}",
        "-c",
        f"{p}.request_max_retries=0",
        "-c",
        f"{p}.stream_max_retries=0",
    ]


def codex_env(home: Path) -> dict[str, str]:
    """Environment for `codex`: its own HOME and CODEX_HOME, and the provider's key."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    return {**_home_env(home), "CODEX_HOME": str(codex_home), CODEX_KEY_VAR: "sk-test-key"}


def claude_provider_config(base_url: str, home: Path) -> ProviderConfig:
    """A daemon provider config running the pinned claude against `base_url`."""
    return ProviderConfig(name="claude_code", binary=str(CLAUDE_BIN), args=[], env=claude_env(base_url, home))


def codex_provider_config(base_url: str, home: Path) -> ProviderConfig:
    """A daemon provider config running the pinned codex against `base_url`."""
    return ProviderConfig(name="codex", binary=str(CODEX_BIN), args=codex_args(base_url), env=codex_env(home))


class EventSink:
    """Collects a runner's events and exit; tests wait on it with a deadline."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.exits: list[tuple[int | None, str | None]] = []
        self._changed = asyncio.Condition()

    async def on_event(self, event: Any) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def on_exit(self, code: int | None, error: str | None) -> None:
        async with self._changed:
            self.exits.append((code, error))
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[EventSink], bool], timeout: float = 60.0, what: str = "condition"
    ) -> None:
        """Wait until predicate(self) holds; fail with the events seen so far after `timeout`."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"timed out waiting for {what}; events: {self.summary()}; exits: {self.exits}"
                ) from None

    def turns_completed(self) -> int:
        return sum(1 for e in self.events if e.turn_complete)

    async def wait_turns(self, n: int, timeout: float = 60.0) -> None:
        await self.wait_for(lambda s: s.turns_completed() >= n, timeout, f"{n} completed turn(s)")

    def of_type(self, ctype: str) -> list[Any]:
        return [e for e in self.events if e.content.get("type") == ctype]

    def summary(self) -> list[tuple[str, str, str]]:
        out = []
        for e in self.events:
            c = e.content
            detail = c.get("text") or c.get("name") or c.get("message") or str(c.get("output", ""))[:60]
            out.append((e.role, c.get("type"), detail))
        return out


def live_group_members(pgid: int) -> list[int]:
    """Pids of processes in group `pgid` that are not zombies (zombies wait for init to reap them)."""
    return [pid for pid, state, _, pgrp in processes() if pgrp == pgid and state not in ("Z", "X")]
