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

__all__ = [
    "PERMISSIONS",
    "USAGE_KEYS",
    "AgentAdapter",
    "AgentEvent",
    "ApprovalAsk",
    "Decision",
    "TurnSpec",
    "junk_event",
    "system_text",
]

# How an agent may act: "ask" relays what the CLI would ask a person; "auto" lets everything run (where the
# CLI permits it); "deny" refuses, unasked, whatever the CLI would ask about.
PERMISSIONS = ("ask", "auto", "deny")


# A turn's usage in one shape for every provider (metadata.turn_usage of the event that ends the turn).
# input_tokens excludes cache reads (as Anthropic counts them); cost_usd is None where the agent does not say.
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "cost_usd", "duration_ms")


@dataclass
class ApprovalAsk:
    """The agent waits for a person: may a tool run (a permission), or what is the answer (a question)?"""

    request_key: str  # the agent's id for the request, echoed in the answer
    kind: str  # "permission" | "question"
    tool_name: str
    input: dict[str, Any]
    tool_use_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision:
    """A person's (or a rule's) answer to an ApprovalAsk."""

    allow: bool
    message: str = ""
    updated_input: dict[str, Any] | None = None  # the tool's input as it should run (a question's answers)
    remember: bool = False


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
    ask: ApprovalAsk | None = None  # the agent waits for this to be answered
    withdrawn: str | None = None  # the request_key of an ask the agent no longer waits for


@dataclass
class TurnSpec:
    """How to start (or resume) an agent in a directory."""

    cwd: Path
    model: str = ""  # "" = the CLI's default
    thinking: str = ""  # codex reasoning effort
    mode: str = "agent"  # "agent" | "plan" (read and plan only)
    permissions: str = "ask"  # one of PERMISSIONS
    allowed_tools: tuple[str, ...] = ()  # tool rules that run unasked (claude's rule syntax)
    resume_id: str | None = None  # provider session id to resume
    prompt: str | None = None  # first message


def junk_event(line: bytes, problem: str) -> AgentEvent:
    """An event for an output line the adapter could not read."""
    text = line.decode("utf-8", "replace").strip()
    return AgentEvent(
        role="system",
        content={"type": "error", "message": f"{problem}: {text[:500]}"},
        metadata={"raw_type": "unparsed"},
    )


def system_text(message: str, **metadata: Any) -> AgentEvent:
    """A system notice (status, init …)."""
    return AgentEvent(role="system", content={"type": "system", "message": message}, metadata=dict(metadata))


class AgentAdapter(ABC):
    """Translation between Berth and one agent CLI."""

    provider: str  # every agent is one long-lived process per session, fed on stdin

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # The provider session id the last argv() chose up front, when the CLI lets us choose.
        self.assigned_session_id: str | None = None
        # Set when the agent's protocol broke down for good (e.g. codex could not open its thread).
        self.failure: str | None = None

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

    @abstractmethod
    def encode_message(self, text: str) -> bytes:
        """The stdin line(s) carrying a user message (a new turn)."""

    def startup_bytes(self) -> bytes:
        """What the agent is sent on stdin as soon as it starts (a protocol handshake)."""
        return b""

    @property
    def ready(self) -> bool:
        """The agent can take a message now (its handshake, if any, is done)."""
        return True

    def take_outgoing(self) -> list[bytes]:
        """Lines the adapter must send the agent after the output it just read (protocol replies)."""
        return []

    def encode_decision(self, ask: ApprovalAsk, decision: Decision) -> bytes:
        """The stdin line(s) answering `ask`."""
        raise NotImplementedError(f"{self.provider} asks no questions")

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
