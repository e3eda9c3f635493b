"""A real daemon subprocess with the real agent CLIs, driven over gRPC, for end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from berth.daemon.v1 import daemon_pb2 as pb
from google.protobuf import json_format

from daemon.config import ProviderConfig
from daemon.worktrees import Worktrees
from tests.support.daemon_proc import DaemonProcess
from tests.support.git_repos import git
from tests.support.waiting import wait_for

__all__ = ["Harness", "branches", "provider_table", "settings_for", "worktree_dirs"]


def provider_table(*providers: ProviderConfig) -> dict[str, Any]:
    """The `[providers.*]` TOML tables for provider configs."""
    return {"providers": {p.name: {"binary": p.binary, "args": list(p.args), "env": dict(p.env)} for p in providers}}


def settings_for(provider: str, model: str = "") -> pb.SessionSettings:
    """Launch settings for `provider`. Codex runs with permissions "auto": its shell commands (how the
    scripted model writes files) would otherwise wait for an approval; tests of approvals set their own."""
    s = pb.SessionSettings()
    s.code.mode = "agent"
    s.code.default_provider = provider
    if provider == "codex":
        s.code.permissions = "auto"
        s.code.providers.codex.model = model or "gpt-5.1-codex-max"
        s.code.providers.codex.thinking = "low"
    elif model:
        s.code.providers.claude_code.model = model
    return s


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def worktree_dirs(root: Path) -> list[Path]:
    """Worktree directories under a worktrees root (two levels: <repo key>/<name>)."""
    if not root.exists():
        return []
    return sorted(p for key in root.iterdir() if key.is_dir() for p in key.iterdir() if not p.name.startswith("."))


@dataclass
class Harness:
    """A daemon plus the paths its config uses."""

    proc: DaemonProcess

    @property
    def stub(self) -> Any:
        return self.proc.stub()

    @property
    def worktrees_root(self) -> Path:
        return Path(self.proc.config["daemon"]["worktrees_root"])

    def worktree_path(self, repo: Path, name: str) -> Path:
        return Worktrees(self.worktrees_root).worktree_path(repo, name)

    def launch(
        self, repo: Path, *, provider: str = "claude_code", timeout: float = 30.0, permissions: str = "", **fields: Any
    ) -> pb.LaunchSessionResponse:
        settings = settings_for(provider)
        if permissions:
            settings.code.permissions = permissions
        req = pb.LaunchSessionRequest(repository=str(repo), session_settings=settings, **fields)
        return self.stub.LaunchSession(req, timeout=timeout)

    def session(self, sid: str) -> pb.Session:
        return self.stub.GetSession(pb.SessionRequest(agent_session_id=sid), timeout=10)

    def events(self, sid: str, after_seq: int = 0) -> list[pb.Event]:
        req = pb.StreamEventsRequest(agent_session_id=sid, after_seq=after_seq, history_only=True)
        return list(self.stub.StreamEvents(req, timeout=10))

    def wait_events(
        self, sid: str, predicate: Callable[[list[pb.Event]], bool], *, timeout: float = 60.0, what: str = "events"
    ) -> list[pb.Event]:
        """Follow the live stream until predicate(all events so far) holds."""
        seen: list[pb.Event] = []
        call = self.stub.StreamEvents(pb.StreamEventsRequest(agent_session_id=sid), timeout=timeout)
        try:
            for ev in call:
                seen.append(ev)
                if predicate(seen):
                    return seen
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        finally:
            call.cancel()
        raise AssertionError(f"timed out waiting for {what}; saw: {[summary(e) for e in seen]}")

    def wait_turns(self, sid: str, n: int, timeout: float = 60.0) -> list[pb.Event]:
        return self.wait_events(sid, lambda evs: turns(evs) >= n, timeout=timeout, what=f"{n} turn(s)")

    def started(self, ack: pb.LaunchSessionResponse, timeout: float = 30.0) -> pb.Session:
        """The launched session once its agent runs (a launch may answer while its worktree is written)."""
        return self.wait_status(ack.session.agent_session_id, "active", timeout)

    def wait_status(self, sid: str, status: str, timeout: float = 30.0) -> pb.Session:
        return wait_for(
            lambda: (s := self.session(sid)).status == status and s, timeout=timeout, what=f"session {sid} {status}"
        )


def turns(events: list[pb.Event]) -> int:
    return sum(1 for e in events if e.metadata.fields.get("turn_complete") and e.metadata["turn_complete"])


def summary(ev: pb.Event) -> tuple[int, str, str, str]:
    c = ev.content
    return ev.seq, ev.role, c.type, (c.text or c.name or c.message)[:80]


def content(ev: pb.Event) -> dict[str, Any]:
    return json_format.MessageToDict(ev.content, preserving_proto_field_name=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
