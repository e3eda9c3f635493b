"""What the daemon tells about its machine: git's and the agent CLIs' versions (looked up once)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from daemon.agents.base import AgentAdapter
from daemon.config import PROVIDERS
from daemon.errors import FailedPrecondition

__all__ = ["MachineFacts"]

_VERSION_RE = re.compile(r"\d+\.\d+(?:\.\d+)?")


class MachineFacts:
    """The versions of git and of each provider's CLI, looked up on first use (concurrent callers wait for
    one look-up)."""

    def __init__(self, git_version: Callable[[], Awaitable[str]], adapter: Callable[[str], AgentAdapter]) -> None:
        self._git_version = git_version
        self._adapter = adapter
        self._versions: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def versions(self) -> dict[str, str]:
        """{"git": …, "claude_code": …, "codex": …}; "" for a CLI that is not found or does not answer."""
        async with self._lock:
            if not self._versions:
                versions = {"git": await self._git_version()}
                for provider in PROVIDERS:
                    versions[provider] = await self._cli_version(provider)
                self._versions = versions
        return self._versions

    async def _cli_version(self, provider: str) -> str:
        try:
            binary = self._adapter(provider).resolve_binary()
        except FailedPrecondition:
            return ""
        try:
            proc = await asyncio.create_subprocess_exec(
                binary, "--version", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 15)
        except (TimeoutError, OSError):
            return ""
        m = _VERSION_RE.search(out.decode(errors="replace"))
        return m.group(0) if m else out.decode(errors="replace").strip()
