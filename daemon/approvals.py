"""The agents' pending questions: a permission before a tool runs, or a question for the user.

An ask is stored (pending) before it is announced as an event, so a control plane that restarts loses
none; a decision is handed to the agent and then stored, one at a time per session. Rules (the
workspace's allow-list, what a person chose to remember) answer matching asks at once, and a session's
timeout ends an ask nobody answered with a refusal the model reads. When the agent can no longer take an
answer (its turn ended, it exited, the daemon restarted) the ask ends as cancelled or expired, with why.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.agents.base import ApprovalAsk, Decision
from daemon.approval_rules import ToolRule, command_of, parse_rule, remember_rule
from daemon.errors import FailedPrecondition, NotFound
from daemon.store import ApprovalRecord, StateStore, StoredEvent

__all__ = ["ApprovalDesk", "Deliver", "Emit", "SessionPolicy"]

log = logging.getLogger("berth.daemon.approvals")

# Stores one event of a session: (sid, role, content, metadata) → the stored event.
Emit = Callable[[str, str, dict[str, Any], dict[str, Any]], StoredEvent]
# Hands a decision to the session's running agent; FailedPrecondition when it is gone.
Deliver = Callable[[str, ApprovalAsk, Decision], Awaitable[None]]


@dataclass
class SessionPolicy:
    """How one session's asks are answered before a person is asked."""

    rules: list[ToolRule] = field(default_factory=list)
    timeout_seconds: float = 0.0  # 0: wait for a decision as long as the agent does


def ask_of(rec: ApprovalRecord) -> ApprovalAsk:
    """The agent's request as it came, from its stored record."""
    return ApprovalAsk(
        request_key=rec.request_key,
        kind=rec.kind,
        tool_name=rec.tool_name,
        input=rec.input,
        tool_use_id=rec.tool_use_id,
        detail=rec.detail,
    )


def _summary(tool_name: str, tool_input: dict[str, Any], kind: str) -> str:
    if kind == "question":
        questions = tool_input.get("questions")
        if isinstance(questions, list) and questions and isinstance(questions[0], dict):
            return str(questions[0].get("question") or "the agent asks a question")
        return "the agent asks a question"
    command = command_of(tool_name, tool_input)
    if command is not None:
        return f"{tool_name} wants to run: {command}"
    path = tool_input.get("file_path") or tool_input.get("path")
    return f"{tool_name} wants to act on {path}" if isinstance(path, str) else f"{tool_name} asks for permission"


class ApprovalDesk:
    """Every session's asks; see the module docstring. One desk per supervisor."""

    def __init__(self, store: StateStore, emit: Emit, deliver: Deliver) -> None:
        self._store = store
        self._emit = emit
        self._deliver = deliver
        self._policies: dict[str, SessionPolicy] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Asks whose decision is being handed to the agent: the agent's "resolved" notice for it, read
        # meanwhile, is the decision arriving, not a withdrawal.
        self._deciding: set[str] = set()

    # -- sessions ----------------------------------------------------------------------------------

    def open_session(self, sid: str, allowed_tools: list[str], timeout_seconds: float) -> None:
        """Set the session's rules: its allow-list plus what was remembered in it before."""
        rules = [parse_rule(r) for r in allowed_tools]
        for rec in self._store.list_approvals(sid, status="allowed"):
            if rec.remember:
                rules.append(remember_rule(rec.tool_name, rec.input))
        self._policies[sid] = SessionPolicy(rules=rules, timeout_seconds=max(float(timeout_seconds), 0.0))

    def end_pending(self, sid: str, status: str, reason: str) -> None:
        """Every pending ask of `sid` ends as `status` ("cancelled" | "expired") with `reason`."""
        for rec in self._store.list_approvals(sid, status="pending"):
            if rec.approval_id not in self._deciding:
                self._end(rec, status, reason, decided_by="")

    def expire_all(self, sids: list[str], reason: str) -> None:
        """At daemon start: asks that outlived the agent that made them."""
        for sid in sids:
            self.end_pending(sid, "expired", reason)

    def forget(self, sid: str) -> None:
        self._policies.pop(sid, None)
        self._locks.pop(sid, None)

    async def close(self) -> None:
        timers, self._timers = self._timers, {}
        for task in timers.values():
            task.cancel()
        for task in timers.values():
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- asks --------------------------------------------------------------------------------------

    async def ask(self, sid: str, ask: ApprovalAsk) -> ApprovalRecord:
        """Take an ask from the agent: answered by a rule at once, or stored pending and announced."""
        policy = self._policies.get(sid) or SessionPolicy()
        rec = ApprovalRecord(
            approval_id="ap-" + secrets.token_hex(8),
            agent_session_id=sid,
            request_key=ask.request_key,
            kind=ask.kind,
            tool_name=ask.tool_name,
            input=ask.input,
            tool_use_id=ask.tool_use_id,
            detail=ask.detail,
        )
        rule = (
            next((r for r in policy.rules if r.matches(ask.tool_name, ask.input)), None)
            if ask.kind == "permission"
            else None
        )
        self._store.insert_approval(rec)
        self._announce(rec)
        if rule is not None:
            async with self._lock(sid):
                try:
                    await self._decide_locked(
                        rec, Decision(allow=True, message=f"allowed by the rule {rule}"), decided_by="rule"
                    )
                except FailedPrecondition:
                    pass  # the agent went away meanwhile: the ask is recorded as cancelled, and its exit says why
        elif policy.timeout_seconds:
            self._timers[rec.approval_id] = asyncio.get_running_loop().create_task(
                self._expire_after(rec.approval_id, policy.timeout_seconds), name=f"approval-{rec.approval_id}"
            )
        return self._store.get_approval(rec.approval_id) or rec

    def withdraw(self, sid: str, request_key: str) -> None:
        """The agent no longer waits for the ask with `request_key`."""
        for rec in self._store.list_approvals(sid, status="pending"):
            if rec.request_key == request_key and rec.approval_id not in self._deciding:
                self._end(rec, "cancelled", "the agent withdrew the request", decided_by="agent")

    # -- decisions ---------------------------------------------------------------------------------

    def of_session(self, sid: str, status: str = "") -> list[ApprovalRecord]:
        return self._store.list_approvals(sid, status=status)

    def get(self, sid: str, approval_id: str) -> ApprovalRecord:
        rec = self._store.get_approval(approval_id)
        if rec is None or rec.agent_session_id != sid:
            raise NotFound(f"approval {approval_id} not found in session {sid}")
        return rec

    async def decide(self, sid: str, approval_id: str, decision: Decision) -> ApprovalRecord:
        """A person's decision: handed to the agent, then stored. FailedPrecondition when the ask is not
        pending any more (decided, withdrawn, expired)."""
        async with self._lock(sid):
            rec = self.get(sid, approval_id)
            if rec.status != "pending":
                raise FailedPrecondition(
                    f"approval {approval_id} is {rec.status} already" + (f" ({rec.message})" if rec.message else "")
                )
            return await self._decide_locked(rec, decision, decided_by="user")

    async def _decide_locked(self, rec: ApprovalRecord, decision: Decision, *, decided_by: str) -> ApprovalRecord:
        self._deciding.add(rec.approval_id)
        try:
            await self._deliver(rec.agent_session_id, ask_of(rec), decision)
        except FailedPrecondition as exc:
            self._deciding.discard(rec.approval_id)
            self._end(rec, "cancelled", f"the agent could not take the decision: {exc}", decided_by="")
            raise FailedPrecondition(f"approval {rec.approval_id}: the agent is no longer waiting ({exc})") from exc
        finally:
            self._deciding.discard(rec.approval_id)
        status = "allowed" if decision.allow else "denied"
        remember = decision.allow and decision.remember
        done = self._store.decide_approval(
            rec.approval_id, status=status, message=decision.message, remember=remember, decided_by=decided_by
        )
        if done is None:  # ended meanwhile (the agent exited); the agent had it, the record says the end
            return self.get(rec.agent_session_id, rec.approval_id)
        if remember:
            self._policies.setdefault(rec.agent_session_id, SessionPolicy()).rules.append(
                remember_rule(rec.tool_name, rec.input)
            )
        self._cancel_timer(rec.approval_id)
        self._announce(done)
        return done

    async def _expire_after(self, approval_id: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._timers.pop(approval_id, None)
        rec = self._store.get_approval(approval_id)
        if rec is None or rec.status != "pending":
            return
        message = f"No decision was made within {seconds:g} seconds, so this was refused."
        async with self._lock(rec.agent_session_id):
            rec = self._store.get_approval(approval_id)
            if rec is None or rec.status != "pending":
                return
            self._deciding.add(approval_id)
            try:
                await self._deliver(rec.agent_session_id, ask_of(rec), Decision(allow=False, message=message))
            except FailedPrecondition:
                pass  # the agent is gone; the ask ends all the same
            finally:
                self._deciding.discard(approval_id)
            done = self._store.decide_approval(approval_id, status="expired", message=message, decided_by="timeout")
            if done is not None:
                self._announce(done)

    # -- internals ---------------------------------------------------------------------------------

    def _lock(self, sid: str) -> asyncio.Lock:
        lock = self._locks.get(sid)
        if lock is None:
            lock = self._locks[sid] = asyncio.Lock()
        return lock

    def _cancel_timer(self, approval_id: str) -> None:
        task = self._timers.pop(approval_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _end(self, rec: ApprovalRecord, status: str, reason: str, *, decided_by: str) -> None:
        done = self._store.decide_approval(rec.approval_id, status=status, message=reason, decided_by=decided_by)
        self._cancel_timer(rec.approval_id)
        if done is not None:
            self._announce(done)

    def _announce(self, rec: ApprovalRecord) -> None:
        """One event per ask and one per its end, so a web app that only listens sees both."""
        pending = self._store.count_pending_approvals(rec.agent_session_id)
        meta: dict[str, Any] = {
            "approval_id": rec.approval_id,
            "kind": rec.kind,
            "approval_status": rec.status,
            "pending_approvals": pending,
        }
        if rec.status == "pending":
            content: dict[str, Any] = {
                "type": "approval_request",
                "name": rec.tool_name,
                "tool_use_id": rec.tool_use_id,
                "arguments": rec.input,
                "message": _summary(rec.tool_name, rec.input, rec.kind),
            }
            if rec.detail:
                meta["detail"] = rec.detail
        else:
            content = {
                "type": "approval_decision",
                "name": rec.tool_name,
                "tool_use_id": rec.tool_use_id,
                "message": rec.message,
                "success": rec.status == "allowed",
            }
            meta.update({"decided_by": rec.decided_by, "remember": rec.remember, "decided_at": rec.decided_at})
        self._emit(rec.agent_session_id, "system", content, meta)
