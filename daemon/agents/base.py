"""What every agent adapter offers: argv and env in, normalized events out.

Adapters are pure translation: they start nothing, store nothing and know no gRPC.
"""

from __future__ import annotations

import json
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import ProviderConfig
from daemon.errors import FailedPrecondition

__all__ = ["AgentAdapter", "AgentEvent", "TurnSpec", "junk_event", "system_text"]


@dataclass
class AgentEvent:
    """One normalized agent event (the seed documents' message shape)."""

    role: str  # "user" | "assistant" | "system" | "tool"
    # {"type": "text"|"tool_use"|"tool_result"|"error"|"system", plus the keys that apply:
    #  text, name, tool_use_id, arguments (dict), output (any JSON), is_error, success, message}
    content: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    provider_session_id: str | None = None
    turn_complete: bool = False
    turn_error: str | None = None


@dataclass
class TurnSpec:
    """How to start (or resume) an agent in a directory."""

    cwd: Path
    model: str = ""  # "" = the CLI's default
    thinking: str = ""  # codex reasoning effort
    resume_id: str | None = None  # provider session id to resume
    prompt: str | None = None  # first message


def junk_event(line: bytes, problem: str) -> AgentEvent:
    """An event for an output line the adapter could not read."""
    text = line.decode("utf-8", "replace").strip()
    return AgentEvent(role="system", content={"type": "error", "message": f"{problem}: {text[:500]}"},
                      metadata={"raw_type": "unparsed"})


def system_text(message: str, **metadata: Any) -> AgentEvent:
    """A system notice (status, init …)."""
    return AgentEvent(role="system", content={"type": "system", "message": message}, metadata=dict(metadata))


class AgentAdapter(ABC):
    """Translation between Berth and one agent CLI."""

    provider: str
    persistent: bool  # True: one long-lived process fed on stdin; False: one process per turn

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # The provider session id the last argv() chose up front, when the CLI lets us choose.
        self.assigned_session_id: str | None = None

    def resolve_binary(self) -> str:
        """The CLI's absolute path; FailedPrecondition naming what was tried when unusable."""
        binary = self.config.binary
        if os.sep in binary:
            path = Path(os.path.expanduser(binary)).absolute()
            if path.is_file() and os.access(path, os.X_OK):
                _check_interpreter(self.provider, path)
                return str(path)
            raise FailedPrecondition(f"{self.provider} binary not found or not executable: {path}")
        found = shutil.which(binary, path=self.config.env.get("PATH") or os.environ.get("PATH"))
        if found is None:
            raise FailedPrecondition(f"{self.provider} binary not found on PATH: {binary}")
        _check_interpreter(self.provider, Path(found))
        return str(Path(found).absolute())

    @abstractmethod
    def argv(self, spec: TurnSpec) -> list[str]:
        """The full command line (binary first) for `spec`."""

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` (the daemon's environment) plus the provider's extra variables."""
        return {**base, **self.config.env}

    def encode_message(self, text: str) -> bytes:
        """One stdin line carrying a user message (persistent adapters only)."""
        raise NotImplementedError(f"{self.provider} takes messages on the command line")

    def interrupt_bytes(self) -> bytes | None:
        """A stdin control message that interrupts the turn, or None (then the runner signals)."""
        return None

    def parse_line(self, line: bytes) -> list[AgentEvent]:
        """One stdout line → zero or more events; never raises on junk."""
        line = line.strip()
        if not line:
            return []
        try:
            data = json.loads(line)
        except ValueError:
            return [junk_event(line, "unreadable agent output")]
        if not isinstance(data, dict):
            return [junk_event(line, "unexpected agent output")]
        try:
            return self.parse_obj(data)
        except Exception as exc:  # noqa: BLE001 - a shape we did not expect must not kill the session
            return [junk_event(line, f"could not interpret agent output ({type(exc).__name__}: {exc})")]

    @abstractmethod
    def parse_obj(self, data: dict[str, Any]) -> list[AgentEvent]:
        """One decoded JSON object → events."""


def _check_interpreter(provider: str, path: Path) -> None:
    """FailedPrecondition when `path` is a script whose `#!` interpreter does not exist.

    The launch answers before the agent starts when the worktree is still being written,
    so what exec would refuse is checked up front.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return
    if not head.startswith(b"#!"):
        return
    words = head[2:].split(b"\n", 1)[0].split()
    interpreter = os.fsdecode(words[0]) if words else ""
    if interpreter and not (os.path.isfile(interpreter) and os.access(interpreter, os.X_OK)):
        raise FailedPrecondition(f"{provider} binary {path} names an interpreter that cannot run: {interpreter}")
