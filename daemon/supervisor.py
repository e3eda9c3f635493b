"""Session lifecycle: worktree → agent process → events, with queues and reconcile on start.

The supervisor is the only place that ties the pieces together:
`repositories` + `worktrees` (git), `agents` + `runner` (processes), `store`
(sessions and the event log), and the components it builds for review and ship
(`git`), worktrees left behind (`left_worktrees`), imports (`importer`) and event
writes (`journal`). It knows nothing of gRPC; it raises `daemon.errors`
exceptions that the service maps to codes.

Size: what is left here is one state machine — launch, the runner's start and exit, messages,
pause/resume/stop, budgets, approvals' delivery — under one per-session lock and one table of live
runners. Its other jobs live apart: launch_request.py (normalizing), recovery.py (orphans after a
restart), machine.py (facts), session_git.py (review and ship), session_worktrees.py (worktrees left
behind), importing.py (imports), ownership.py (who owns what), session_journal.py (event and
status writes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import daemon
from daemon.agents import adapter_for
from daemon.agents.base import AgentAdapter, AgentEvent, ApprovalAsk, Decision, TurnSpec
from daemon.approvals import ApprovalDesk
from daemon.config import DaemonConfig
from daemon.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from daemon.importing import TranscriptImporter
from daemon.launch_request import LaunchRequest, normalize_launch
from daemon.machine import MachineFacts
from daemon.ownership import check_owner, check_worktree_free, holder_of
from daemon.recovery import end_orphan_group
from daemon.repositories import Repositories
from daemon.runner import AgentRunner
from daemon.session_git import SessionGit
from daemon.session_journal import SessionJournal
from daemon.session_worktrees import SessionWorktrees
from daemon.statuses import APPROVAL_STATUSES, ENDED_STATUSES, RUNNING_STATUSES, SESSION_STATUSES
from daemon.store import ApprovalRecord, SessionRecord, StateStore, StoredEvent
from daemon.worktrees import WorktreeInfo, Worktrees

__all__ = ["STATUSES", "LaunchRequest", "LaunchResult", "Supervisor"]

log = logging.getLogger("berth.daemon.supervisor")

STATUSES = SESSION_STATUSES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class LaunchResult:
    session: SessionRecord
    reused: bool
    pid: int
    pooled: bool = False  # the worktree came ready from the pool
    # The worktree's files are being written; the agent starts when they are (status → active).
    checkout_pending: bool = False


class _Live:
    """A session whose agent this daemon is running right now."""

    def __init__(self, runner: AgentRunner) -> None:
        self.runner = runner
        # Set when the daemon itself ends the process (pause/stop), so the exit
        # callback does not mark the session failed.
        self.ending_status: str | None = None
        # Writes the worktree's files, then starts the agent (launches acknowledged before that).
        self.starting: asyncio.Task[None] | None = None


class Supervisor:
    """Owns every session of this daemon."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self._store: StateStore | None = None
        self._desk: ApprovalDesk | None = None
        self.repositories = Repositories(config.repos_root)
        self.worktrees = Worktrees(config.worktrees_root, config.pool.size)
        self._live: dict[str, _Live] = {}
        # Weak: a session's lock lives while someone holds or waits on it, then goes.
        self._session_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._launching = 0
        self._facts = MachineFacts(self.worktrees.git_version, self._adapter)
        self.journal = SessionJournal(lambda: self.store)
        self.git = SessionGit(self.worktrees, owned=self._owned_by, in_turn=lambda sid: self.live_state(sid)[0])
        self.left_worktrees = SessionWorktrees(
            lambda: self.store,
            self.repositories,
            self.worktrees,
            get=self._get,
            owned=self._owned,
            live=self._live,
            lock=self._lock,
        )
        self.importer = TranscriptImporter(config, lambda: self.store, self.repositories, self.worktrees, self._live)
        self._closed = False
        self._budget_stops: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- lifecycle

    @property
    def desk(self) -> ApprovalDesk:
        """The approvals of every session; FailedPrecondition before start()."""
        if self._desk is None:
            raise FailedPrecondition("the supervisor is not started")
        return self._desk

    @property
    def store(self) -> StateStore:
        """The state store; FailedPrecondition before start() (or `async with`) has opened it."""
        if self._store is None:
            raise FailedPrecondition("the supervisor is not started")
        return self._store

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Open the state store and take back the sessions an earlier run left active."""
        if not self.config.state_dir.exists():
            self.config.state_dir.mkdir(parents=True, mode=0o700)
        self._store = StateStore(self.config.db_path)
        self._desk = ApprovalDesk(self._store, self._emit, self._deliver_decision)
        # Asks of agents the old daemon ran: those agents are gone (or are ended below) and cannot be answered.
        self._desk.expire_all(
            [rec.agent_session_id for rec in self._store.list_sessions()],
            "the daemon restarted while the request was pending",
        )
        await self._reconcile()
        if self.config.pool.size:
            # Keep ready worktrees for the repositories this machine already works in.
            for repository in sorted({rec.repository for rec in self.store.list_sessions() if rec.repository}):
                if Path(repository).is_dir():
                    await self.worktrees.warm(Path(repository))

    async def shutdown(self) -> None:
        """Let go of the agents and close the store. Idempotent.

        By default agents keep running: under systemd's KillMode=process a daemon
        restart must not kill them, and the next start takes them back by resume
        id. With `stop_agents_on_shutdown` (make run, tests) they are paused.
        """
        if self._closed:
            return
        if self.config.stop_agents_on_shutdown:
            for sid in list(self._live):
                try:
                    await self.pause(sid)
                except Exception:
                    log.exception("pausing %s at shutdown failed", sid)
        for live in list(self._live.values()):
            live.ending_status = "shutdown"
            if live.starting is not None:
                await asyncio.shield(live.starting)  # a checkout under way finishes; its agent is not started
        self._closed = True
        for live in list(self._live.values()):
            await live.runner.detach()
        self._live.clear()
        if self._desk is not None:
            await self._desk.close()
        if self._store is not None:
            self._store.close()
        await self.worktrees.close()

    async def stop_all(self, grace: float | None = None) -> None:
        """Stop every running agent (used by tests and `--stop-agents-on-exit`)."""
        for sid in list(self._live):
            try:
                await self.stop(sid, grace)
            except NotFound:
                pass

    async def _reconcile(self) -> None:
        """Sessions marked running but with no process here: their agent lost its pipes
        when the old daemon went away, so end what is left and resume by provider id."""
        for rec in self.store.list_sessions():
            if rec.status not in RUNNING_STATUSES:
                continue
            if rec.pid:
                await end_orphan_group(rec.pid, "codex" if rec.provider == "codex" else "claude")
            elif rec.status == "created":
                # No agent ever ran here: the old daemon went away while writing the worktree (or before
                # the spawn). Finish the files (no agent touched them) and let a new launch start it.
                reason = "daemon restarted before the agent started; launch the session again to start it"
                try:
                    await self.worktrees.finish_checkout(Path(rec.worktree_path))
                except Exception as exc:  # noqa: BLE001 - the session is failed either way; say why
                    reason += f" (the worktree's files could not be written: {exc})"
                self.store.update_session(rec.agent_session_id, last_error=reason)
                self.journal.status(rec.agent_session_id, "failed", reason)
                self._fail_pending(rec.agent_session_id, reason)
                continue
            if rec.provider_session_id or rec.provider == "codex":
                try:
                    await self._start_runner(rec, resume_id=rec.provider_session_id or None)
                    self.journal.status(rec.agent_session_id, "active", "re-adopted after daemon restart")
                    continue
                except Exception as exc:  # noqa: BLE001 - any failure here marks the session failed
                    reason = f"could not resume after daemon restart: {exc}"
            else:
                reason = "daemon restarted before the agent reported its session id"
            self.store.update_session(rec.agent_session_id, pid=0, last_error=reason)
            self.journal.status(rec.agent_session_id, "failed", reason)
            self._fail_pending(rec.agent_session_id, reason)

    # -------------------------------------------------------------------- launch

    def _lock(self, agent_session_id: str) -> asyncio.Lock:
        lock = self._session_locks.get(agent_session_id)
        if lock is None:
            lock = self._session_locks[agent_session_id] = asyncio.Lock()
        return lock

    def _running_count(self) -> int:
        return len(self._live) + self._launching

    def _adapter(self, provider: str) -> AgentAdapter:
        return adapter_for(provider, self.config.provider(provider))

    def _normalize(self, req: LaunchRequest) -> LaunchRequest:
        return normalize_launch(req, self.config)

    async def launch(self, req: LaunchRequest) -> LaunchResult:
        """Create (or reuse) the worktree and start the agent; return at once."""
        req = self._normalize(req)
        async with self._lock(req.agent_session_id):
            existing = self.store.get_session(req.agent_session_id)
            if existing is not None:
                return await self._relaunch(self._owned(existing, req.owner), req)
            if self._running_count() >= self.config.max_sessions:
                raise ResourceExhausted(f"this machine runs {self.config.max_sessions} sessions already (max_sessions)")
            self._launching += 1
            try:
                return await self._launch_new(req)
            finally:
                self._launching -= 1

    async def _launch_new(self, req: LaunchRequest) -> LaunchResult:
        adapter = self._adapter(req.provider)
        adapter.resolve_binary()  # FailedPrecondition naming the path, before anything is created
        # Options the CLI would refuse (e.g. claude's bypass as root) fail here, before anything is created.
        adapter.argv(
            TurnSpec(
                cwd=Path("."),
                model=req.model,
                thinking=req.thinking,
                mode=req.mode,
                permissions=req.permissions,
                allowed_tools=tuple(req.allowed_tools),
            )
        )
        if req.resume_session_id:
            self._check_resume_id(req.resume_session_id, req.owner)
        repo = await self.repositories.resolve(req.repository)
        path = self.worktrees.worktree_path(repo, req.worktree_name)
        # One launch at a time per worktree, from the check until the session is stored as its holder.
        async with self._lock(f"worktree:{path}"):
            check_worktree_free(self.store, self._live, path, req)
            info = await self.worktrees.ensure(repo, req.worktree_name, req.base_ref, defer_checkout=True)
            now = _now()
            rec = SessionRecord(
                agent_session_id=req.agent_session_id,
                workspace_id=req.workspace_id,
                provider=req.provider,
                model=req.model,
                status="created",
                provider_session_id=req.resume_session_id,
                repository=str(repo),
                worktree_path=str(info.path),
                branch=info.branch,
                pid=0,
                created_at=now,
                updated_at=now,
                last_error="",
                last_seq=0,
                settings={
                    "thinking": req.thinking,
                    "mode": req.mode,
                    "permissions": req.permissions,
                    "base_ref": req.base_ref,
                    "base_commit": info.base_commit,
                    "allowed_tools": list(req.allowed_tools),
                    "approval_timeout_seconds": req.approval_timeout_seconds,
                    "max_turns": req.max_turns,
                    "max_cost_usd": req.max_cost_usd,
                    **req.settings,
                },
                metadata=req.metadata,
                worktree_created=info.created,
                owner=req.owner,
            )
            try:
                self.store.insert_session(rec)
            except BaseException:
                if info.created:
                    await self.worktrees.rollback(info)
                raise
            self.store.drop_left_worktree(str(info.path))  # a forgotten session's worktree, taken over
        sid = rec.agent_session_id
        resume_id = req.resume_session_id or None
        try:
            self.journal.status(sid, "created", "")
            if req.initial_prompt:
                self.journal.user_message(sid, req.initial_prompt, pending=True)
            if info.checkout_pending:
                # Acknowledge now; the files are written and the agent started in the background.
                live = self._prepare_runner(rec, resume_id=resume_id)
                live.starting = asyncio.get_running_loop().create_task(self._start_after_checkout(sid, live, info))
                return LaunchResult(session=self._get(sid), reused=False, pid=0, checkout_pending=True)
            pid = await self._start_runner(rec, resume_id=resume_id)
        except BaseException:
            self._live.pop(sid, None)
            self.store.delete_session(sid)
            if info.created:
                await self.worktrees.rollback(info)
            raise
        rec = self.journal.status(sid, "active", "")
        log.info(
            "session launched",
            extra={"session_id": sid, "provider": rec.provider, "worktree": rec.worktree_path, "pid": pid},
        )
        return LaunchResult(session=rec, reused=False, pid=pid, pooled=info.pooled)

    async def _start_after_checkout(self, sid: str, live: _Live, info: WorktreeInfo) -> None:
        """Write the worktree's files, then start the agent, unless the session was paused or
        stopped meanwhile. A failure marks the session failed and removes the unused worktree."""
        try:
            await self.worktrees.populate(info)
        except Exception as exc:  # noqa: BLE001 - whatever git says ends up in the session
            await self._fail_start(sid, live, info, f"checking out the worktree failed: {exc}")
            return
        if live.ending_status is not None or self._closed or self._live.get(sid) is not live:
            return
        try:
            pid = await live.runner.start()
        except Exception as exc:  # noqa: BLE001 - e.g. exec failed: the session says why
            await self._fail_start(sid, live, info, f"the agent did not start: {exc}")
            return
        rec = self._set(sid, pid=pid or 0)
        self._claim_runner_id(rec, live)
        self.journal.status(sid, "active", "")
        log.info("session launched", extra={"session_id": sid, "worktree": str(info.path), "pid": pid})

    async def _fail_start(self, sid: str, live: _Live, info: WorktreeInfo, error: str) -> None:
        if self._live.get(sid) is live:
            self._live.pop(sid, None)
        await live.runner.stop(0)
        if self._closed:
            return
        try:
            await self.worktrees.rollback(info)  # never used by an agent: nothing of the user's in it
        except Exception:
            log.exception("removing the worktree of %s failed", sid)
        self._set(sid, pid=0, last_error=error)
        self.journal.event(sid, "system", {"type": "error", "message": error, "is_error": True})
        self.journal.status(sid, "failed", error)
        self._fail_pending(sid, error)

    async def _relaunch(self, rec: SessionRecord, req: LaunchRequest) -> LaunchResult:
        """Launching an id that exists: the same session, never a second process."""
        live = self._live.get(rec.agent_session_id)
        if live is not None:
            pending = live.starting is not None and not live.starting.done()
            return LaunchResult(session=rec, reused=True, pid=live.runner.pid or 0, checkout_pending=pending)
        if rec.status != "active":  # no agent runs for it: start one again
            rec = await self._resume_locked(rec, req.initial_prompt)
        return LaunchResult(session=rec, reused=True, pid=rec.pid)

    # ------------------------------------------------------------ owners

    def _owned(self, rec: SessionRecord, owner: str) -> SessionRecord:
        """`rec` when it belongs to `owner`; NotFound otherwise. A session of the machine's own user
        (owner "", e.g. from before owners existed) is adopted by the first owner that launches it."""
        if rec.owner == owner:
            return rec
        if rec.owner:
            raise NotFound(f"session {rec.agent_session_id} not found")
        ids = [rec.provider_session_id] if rec.provider_session_id else []
        self.store.reassign_provider_sessions("", owner, ids)
        return self._set(rec.agent_session_id, owner=owner)

    def _check_resume_id(self, provider_session_id: str, owner: str) -> None:
        """NotFound unless this daemon recorded `provider_session_id` for `owner`.

        The machine's own user (owner "") may also resume a provider session the daemon never saw
        (their own CLI's), which is then recorded as theirs."""
        holder = self.store.provider_session_owner(provider_session_id)
        if holder is None and not owner:
            self.store.claim_provider_session(provider_session_id, owner)
            return
        if holder != owner:
            raise NotFound(f"resume_session_id: no session {provider_session_id} of this owner on this machine")

    def _claim_provider_id(self, rec: SessionRecord, provider_session_id: str) -> None:
        holder = self.store.claim_provider_session(provider_session_id, rec.owner)
        if holder != rec.owner:
            log.warning(
                "provider session %s of %s is recorded for another owner", provider_session_id, rec.agent_session_id
            )

    # ------------------------------------------------------------ runners

    async def _start_runner(self, rec: SessionRecord, *, resume_id: str | None) -> int:
        live = self._prepare_runner(rec, resume_id=resume_id)
        try:
            pid = await live.runner.start()
        except BaseException:
            self._live.pop(rec.agent_session_id, None)
            await live.runner.stop(0)
            raise
        self._set(rec.agent_session_id, pid=pid or 0)
        self._claim_runner_id(rec, live)
        return pid or 0

    def _claim_runner_id(self, rec: SessionRecord, live: _Live) -> None:
        """The provider session id the runner chose up front (claude's --session-id) is the owner's."""
        chosen = live.runner.provider_session_id
        if chosen:
            self._claim_provider_id(rec, chosen)

    def _prepare_runner(self, rec: SessionRecord, *, resume_id: str | None) -> _Live:
        """The session's runner, registered as live but not started, with the session's pending
        messages queued in order (more queue until it starts)."""
        adapter = self._adapter(rec.provider)
        settings = rec.settings
        allowed = [str(r) for r in settings.get("allowed_tools") or []]
        spec = TurnSpec(
            cwd=Path(rec.worktree_path),
            model=rec.model,
            thinking=str(settings.get("thinking", "")),
            resume_id=resume_id,
            mode=str(settings.get("mode") or "agent"),
            permissions=str(settings.get("permissions") or "ask"),
            allowed_tools=tuple(allowed),
        )
        sid = rec.agent_session_id
        live: _Live | None = None
        self.desk.open_session(sid, allowed, float(settings.get("approval_timeout_seconds") or 0))

        async def on_event(ev: AgentEvent) -> None:
            if self._closed:
                return
            if ev.ask is not None:
                if ev.ask.kind == "permission" and (spec.permissions == "deny" or spec.mode == "plan"):
                    await self._refuse_unasked(sid, ev.ask)
                else:
                    await self.desk.ask(sid, ev.ask)
                return
            if ev.withdrawn is not None:
                self.desk.withdraw(sid, ev.withdrawn)
                return
            self._agent_event(sid, ev)
            if ev.turn_complete:
                self.desk.end_pending(sid, "cancelled", "the turn ended before a decision")
                self._count_turn(sid, ev)

        async def on_exit(code: int | None, error: str | None) -> None:
            if live is None or self._live.get(sid) is not live:
                return
            self._live.pop(sid, None)
            if live.ending_status == "shutdown" or self._closed:
                return  # pending asks stay stored; the next start expires them
            ending = {"paused": "the session was paused", "completed": "the session was stopped"}
            self.desk.end_pending(sid, "cancelled", ending.get(live.ending_status or "", "the agent exited"))
            self.desk.forget(sid)  # its rules and lock; the next start opens them again
            if live.ending_status is None:
                # The agent went away on its own.
                if code in (0, None) and not error:
                    self._set(sid, pid=0)
                    self.journal.status(sid, "completed", "agent exited")
                else:
                    msg = (error or f"agent exited with code {code}").strip()
                    self._set(sid, pid=0, last_error=msg)
                    self.journal.event(sid, "system", {"type": "error", "message": msg, "is_error": True})
                    self.journal.status(sid, "failed", msg)
                self._fail_pending(sid, "the agent exited before it took the message")

        async def on_written(seq: int) -> None:
            if self._store is not None and not self._closed:
                self._store.mark_written(sid, seq)

        runner = AgentRunner(
            adapter, spec, on_event=on_event, on_exit=on_exit, base_env=os.environ, on_written=on_written
        )
        live = _Live(runner)
        self._live[sid] = live
        for pending in self.store.pending_messages(sid):
            if pending.written:
                # Handed to the agent before it went away (daemon restart, pause): its turn never ended.
                self.store.drop_pending(sid, pending.seq)
                self.journal.event(
                    sid,
                    "system",
                    {
                        "type": "error",
                        "is_error": True,
                        "message": f"message {pending.message_id} was with the agent when it stopped; its turn did "
                        "not finish (send it again if it is still wanted)",
                    },
                    {"message_id": pending.message_id, "reason": "turn_cut"},
                )
            else:
                runner.preload(pending.content, pending.seq)
        return live

    def _fail_pending(self, sid: str, reason: str) -> None:
        """Every pending message of `sid` ends with an error event saying why it was not delivered."""
        if self._store is None or self._closed:
            return
        for pending in self.store.pending_messages(sid):
            self._fail_one(sid, pending.seq, pending.message_id, reason)

    def _fail_one(self, sid: str, seq: int, message_id: str, reason: str) -> None:
        self.store.drop_pending(sid, seq)
        self.journal.event(
            sid,
            "system",
            {"type": "error", "is_error": True, "message": f"message {message_id} was not delivered: {reason}"},
            {"message_id": message_id, "reason": "not_delivered"},
        )

    # ------------------------------------------------------------------ messages

    async def send_message(self, agent_session_id: str, content: str, message_id: str = "") -> tuple[str, str, str]:
        """Queue a user message; returns (message_id, "sent"|"queued", timestamp)."""
        if not content.strip():
            raise InvalidArgument("content", "is empty")
        rec = self._get(agent_session_id)
        live = self._live.get(agent_session_id)
        if rec.settings.get("budget_reached"):
            raise FailedPrecondition(f"session {agent_session_id} reached its budget: {rec.settings['budget_reached']}")
        if live is None or rec.status not in RUNNING_STATUSES:
            raise FailedPrecondition(f"session {agent_session_id} is {rec.status}, not running; resume it first")
        if not isinstance(message_id, str) or len(message_id) > 200:
            raise InvalidArgument("message_id", "must be at most 200 characters")
        message_id = message_id or "msg-" + secrets.token_hex(8)
        runner = live.runner
        state = "queued" if (not runner.started or runner.turn_running or runner.queued) else "sent"
        # Stored (as pending) before it is acknowledged: a crash from here on does not lose it.
        ev = self.journal.user_message(
            agent_session_id, content, {"message_id": message_id}, pending=True, message_id=message_id
        )
        try:
            await live.runner.send(content, ev.seq)
        except FailedPrecondition as exc:
            # Refused after all (the agent is going away): not pending, and the log says so.
            self._fail_one(agent_session_id, ev.seq, message_id, str(exc))
            raise
        return message_id, state, ev.created_at

    async def interrupt(self, agent_session_id: str) -> SessionRecord:
        rec = self._get(agent_session_id)
        live = self._live.get(agent_session_id)
        if live is None:
            raise FailedPrecondition(f"session {agent_session_id} is {rec.status}, not running")
        await live.runner.interrupt()
        self.journal.event(agent_session_id, "system", {"type": "system", "message": "interrupted"})
        return self._get(agent_session_id)

    # ----------------------------------------------------------- pause / resume

    async def pause(self, agent_session_id: str) -> SessionRecord:
        async with self._lock(agent_session_id):
            rec = self._get(agent_session_id)
            if rec.status == "paused":
                return rec
            if rec.status not in RUNNING_STATUSES:
                raise FailedPrecondition(f"session {agent_session_id} is {rec.status}; only a running session pauses")
            await self._end_process(agent_session_id, "paused", self.config.stop_grace_seconds)
            return self.journal.status(agent_session_id, "paused", "")

    async def resume(self, agent_session_id: str, prompt: str = "") -> SessionRecord:
        async with self._lock(agent_session_id):
            rec = self._get(agent_session_id)
            if agent_session_id in self._live:
                if prompt:
                    await self.send_message(agent_session_id, prompt)
                return self._get(agent_session_id)
            return await self._resume_locked(rec, prompt)

    def _count_turn(self, sid: str, ev: AgentEvent) -> None:
        """Add a finished turn to the session's spend; at its budget, stop it (the turn is over)."""
        rec = self.store.get_session(sid)
        if rec is None:
            return
        usage = ev.metadata.get("turn_usage") if isinstance(ev.metadata.get("turn_usage"), dict) else {}
        spent = dict(rec.settings.get("spent") or {})
        spent["turns"] = int(spent.get("turns", 0)) + 1
        cost = usage.get("cost_usd") if usage else None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            spent["cost_usd"] = float(spent.get("cost_usd", 0.0)) + float(cost)
        settings = {**rec.settings, "spent": spent}
        max_turns = int(rec.settings.get("max_turns") or 0)
        max_cost = float(rec.settings.get("max_cost_usd") or 0)
        reached = ""
        if max_turns and spent["turns"] >= max_turns:
            reached = f"max_turns {max_turns} ({spent['turns']} turn{'s' if spent['turns'] != 1 else ''} run)"
        elif max_cost and float(spent.get("cost_usd", 0.0)) >= max_cost:
            reached = f"max_cost_usd {max_cost:g} (${spent['cost_usd']:.4f} spent)"
        if reached:
            settings["budget_reached"] = reached
        self._set(sid, settings=settings)
        live = self._live.get(sid)
        if reached and live is not None:
            live.runner.hold()  # the queued messages stay pending; the stop reports them
            self.journal.event(
                sid,
                "system",
                {"type": "system", "message": f"budget reached: {reached}; stopping the session"},
                {"reason": "budget", "budget": reached},
            )
            # After the turn's end has been handled: stop() takes the session's lock.
            task = asyncio.get_running_loop().create_task(self._stop_for_budget(sid, reached))
            self._budget_stops.add(task)
            task.add_done_callback(self._budget_stops.discard)

    async def _stop_for_budget(self, sid: str, reached: str) -> None:
        try:
            async with self._lock(sid):
                if sid not in self._live or self._closed:
                    return
                await self._end_process(sid, "completed", self.config.stop_grace_seconds)
                self._fail_pending(sid, f"the session reached its budget: {reached}")
                self.journal.status(sid, "completed", f"budget reached: {reached}")
        except Exception:
            log.exception("stopping %s at its budget failed", sid)

    async def _resume_locked(self, rec: SessionRecord, prompt: str) -> SessionRecord:
        if rec.settings.get("budget_reached"):
            raise FailedPrecondition(
                f"session {rec.agent_session_id} reached its budget: {rec.settings['budget_reached']}"
            )
        if self._running_count() >= self.config.max_sessions:
            raise ResourceExhausted(f"this machine runs {self.config.max_sessions} sessions already (max_sessions)")
        if not Path(rec.worktree_path).is_dir():
            raise FailedPrecondition(f"worktree {rec.worktree_path} no longer exists")
        holder = holder_of(self.store, rec.worktree_path)
        if (
            holder is not None
            and holder.agent_session_id != rec.agent_session_id
            and (holder.status in RUNNING_STATUSES or holder.agent_session_id in self._live)
        ):
            raise FailedPrecondition(
                f"worktree_name: the worktree is in use by session {holder.agent_session_id}; stop it first",
                field="worktree_name",
            )
        if prompt:
            self.journal.user_message(rec.agent_session_id, prompt, pending=True)
        self._set(rec.agent_session_id, last_error="")
        await self._start_runner(rec, resume_id=rec.provider_session_id or None)
        return self.journal.status(rec.agent_session_id, "active", "resumed")

    async def stop(self, agent_session_id: str, grace: float | None = None) -> SessionRecord:
        async with self._lock(agent_session_id):
            rec = self._get(agent_session_id)
            if rec.status in ENDED_STATUSES and agent_session_id not in self._live:
                return rec
            await self._end_process(
                agent_session_id, "completed", self.config.stop_grace_seconds if grace is None else grace
            )
            self._fail_pending(agent_session_id, "the session was stopped first")
            return self.journal.status(agent_session_id, "completed", "stopped")

    async def _end_process(self, agent_session_id: str, status: str, grace: float) -> None:
        live = self._live.get(agent_session_id)
        if live is not None:
            live.ending_status = status
            if live.starting is not None:
                # Let the checkout finish (never leave half-written files); the agent is then not started.
                await asyncio.shield(live.starting)
            await live.runner.stop(grace)
            self._live.pop(agent_session_id, None)
        self._set(agent_session_id, pid=0)

    # -------------------------------------------------------------------- reads

    def _get(self, agent_session_id: str) -> SessionRecord:
        if not agent_session_id:
            raise InvalidArgument("agent_session_id", "is required")
        rec = self.store.get_session(agent_session_id)
        if rec is None:
            raise NotFound(f"session {agent_session_id} not found")
        return rec

    def get(self, agent_session_id: str) -> SessionRecord:
        return self._get(agent_session_id)

    def _owned_by(self, agent_session_id: str, owner: str) -> SessionRecord:
        rec = self._get(agent_session_id)
        check_owner(rec, owner)
        return rec

    def live_state(self, agent_session_id: str) -> tuple[bool, int]:
        """(turn_running, queued messages) of a running session; (False, 0) otherwise."""
        live = self._live.get(agent_session_id)
        if live is None:
            return False, 0
        return bool(live.runner.turn_running), int(live.runner.queued)

    def list_sessions(self, *, status: str = "", workspace_id: str = "") -> list[SessionRecord]:
        if status and status not in STATUSES:
            raise InvalidArgument("status", f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        return self.store.list_sessions(status=status, workspace_id=workspace_id)

    def sessions_by_status(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        if self._store is None or self._closed:
            return counts
        for rec in self.store.list_sessions():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        return counts

    async def events(self, agent_session_id: str, after_seq: int, history_only: bool) -> AsyncIterator[StoredEvent]:
        self._get(agent_session_id)
        if after_seq < 0:
            raise InvalidArgument("after_seq", "must be 0 or more")
        async for ev in self.store.follow(agent_session_id, after_seq, history_only=history_only):
            yield ev

    async def machine_info(self) -> dict[str, Any]:
        versions = await self._facts.versions()
        return {
            "hostname": socket.gethostname(),
            "daemon_version": daemon.__version__,
            "git_version": versions["git"],
            "claude_version": versions["claude_code"],
            "codex_version": versions["codex"],
            "sessions_by_status": self.sessions_by_status(),
            "max_sessions": self.config.max_sessions,
            "running_sessions": len(self._live),
            "repos_root": str(self.config.repos_root),
            "worktrees_root": str(self.config.worktrees_root),
        }

    # ---------------------------------------------------------------- approvals

    def approvals(self, agent_session_id: str, owner: str, status: str = "") -> list[ApprovalRecord]:
        """The session's approvals, oldest first; NotFound unless the session is `owner`'s."""
        check_owner(self._get(agent_session_id), owner)
        if status and status not in APPROVAL_STATUSES:
            raise InvalidArgument("status", f"unknown status {status!r}; known: {', '.join(APPROVAL_STATUSES)}")
        return self.desk.of_session(agent_session_id, status)

    async def decide_approval(
        self, agent_session_id: str, approval_id: str, owner: str, decision: Decision
    ) -> ApprovalRecord:
        """Answer a pending approval; NotFound for another owner's session or an unknown approval,
        FailedPrecondition when it is no longer pending."""
        check_owner(self._get(agent_session_id), owner)
        if not approval_id:
            raise InvalidArgument("approval_id", "is required")
        if len(decision.message) > 10_000:
            raise InvalidArgument("message", "must be at most 10000 characters")
        return await self.desk.decide(agent_session_id, approval_id, decision)

    def pending_approvals(self, agent_session_id: str) -> int:
        return self.store.count_pending_approvals(agent_session_id)

    async def _deliver_decision(self, sid: str, ask: ApprovalAsk, decision: Decision) -> None:
        live = self._live.get(sid)
        if live is None or not live.runner.running:
            raise FailedPrecondition(f"session {sid} is not running")
        await live.runner.answer(live.runner.adapter.encode_decision(ask, decision))

    async def _refuse_unasked(self, sid: str, ask: ApprovalAsk) -> None:
        """permissions "deny", or plan mode (read and plan only): what would ask a person for permission is
        refused at once, and the log says so. (A plan-mode question still reaches the user.)"""
        why = "permissions: deny" if self.get(sid).settings.get("permissions") == "deny" else "plan mode"
        message = f"{ask.tool_name} was refused without asking ({why})"
        try:
            await self._deliver_decision(sid, ask, Decision(allow=False, message=message))
        except FailedPrecondition:
            return
        self.journal.event(
            sid,
            "system",
            {"type": "error", "message": message},
            {"raw_type": "permission_denied", "tool_name": ask.tool_name, "tool_use_id": ask.tool_use_id},
        )

    def _emit(self, sid: str, role: str, content: dict[str, Any], metadata: dict[str, Any]) -> StoredEvent:
        return self.journal.event(sid, role, content, metadata)

    # ------------------------------------------------------------------- events

    def _agent_event(self, sid: str, ev: AgentEvent) -> None:
        if self._closed:
            return
        metadata = dict(ev.metadata)
        if ev.provider_session_id:
            rec = self.store.get_session(sid)
            if rec is not None and rec.provider_session_id != ev.provider_session_id:
                self._claim_provider_id(rec, ev.provider_session_id)
                self._set(sid, provider_session_id=ev.provider_session_id)
                metadata["provider_session_id"] = ev.provider_session_id  # readers learn it from the stream
        if ev.turn_complete:
            metadata["turn_complete"] = True
        if ev.turn_error:
            metadata["turn_error"] = ev.turn_error
        self.journal.event(sid, ev.role, ev.content, metadata)
        if ev.turn_complete:
            self.store.finish_written(sid)

    def _set(self, sid: str, **fields: Any) -> SessionRecord:
        return self.store.update_session(sid, **fields)
