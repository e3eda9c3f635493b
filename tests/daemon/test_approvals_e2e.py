"""Approvals over gRPC with the real claude and codex: the agent asks before a shell command, the
decision goes back, and what was decided is what ran.

The scripted model asks for one shell command: claude gets a `Bash` tool_use (which claude -p never runs
unasked), codex gets its default model's code-mode `exec` tool calling `exec_command` (codex 0.169 asks
for it under approvalPolicy "untrusted").
"""

from __future__ import annotations

import signal
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb
from google.protobuf import struct_pb2

from tests.daemon.harness import Harness, provider_table, settings_for, summary
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

PROVIDERS = ["claude_code", "codex"]
# Not an edit (claude's acceptEdits runs `printf … > file` unasked) and not one codex knows to be safe.
COMMAND = 'python3 -c \'open("ran.txt", "w").write("approved")\''


@pytest.fixture
def harness(daemon_factory, claude_provider, codex_provider) -> Harness:
    return Harness(daemon_factory(config=provider_table(claude_provider, codex_provider)))


def _settings(provider: str, **code) -> pb.SessionSettings:
    s = settings_for(provider)
    s.code.permissions = "ask"
    for key, value in code.items():
        if key == "allowed_tools":
            s.code.allowed_tools.extend(value)
        else:
            setattr(s.code, key, value)
    return s


def _launch(harness: Harness, repo: Path, provider: str, prompt: str, owner: str = "alice", **code):
    req = pb.LaunchSessionRequest(
        repository=str(repo), session_settings=_settings(provider, **code), initial_prompt=prompt, owner=owner
    )
    ack = harness.stub.LaunchSession(req, timeout=30)
    return ack.session.agent_session_id, Path(ack.payload["worktree_path"])


def _approvals(harness: Harness, sid: str, owner: str = "alice", status: str = "") -> list[pb.Approval]:
    req = pb.ListApprovalsRequest(agent_session_id=sid, owner=owner, status=status)
    return list(harness.stub.ListApprovals(req, timeout=10).approvals)


def _pending(harness: Harness, sid: str) -> pb.Approval:
    try:
        return wait_for(
            lambda: (p := _approvals(harness, sid, status="pending")) and p[0], timeout=60, what="a pending approval"
        )
    except TimeoutError as exc:
        raise AssertionError(f"no pending approval; events: {[summary(e) for e in harness.events(sid)]}") from exc


def _decide(harness: Harness, sid: str, approval_id: str, decision: str, owner: str = "alice", **fields):
    return harness.stub.DecideApproval(
        pb.DecideApprovalRequest(
            agent_session_id=sid, approval_id=approval_id, owner=owner, decision=decision, **fields
        ),
        timeout=30,
    )


def _approval_events(harness: Harness, sid: str) -> list[pb.Event]:
    return [e for e in harness.events(sid) if e.content.type in ("approval_request", "approval_decision")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_shell_command_waits_for_approval_and_runs_in_the_worktree_once_allowed(
    harness, git_repo, model_server, provider
):
    model_server.script("run the check", command=COMMAND, text="the check ran")
    sid, worktree = _launch(harness, git_repo, provider, "please run the check")
    pending = _pending(harness, sid)
    assert pending.kind == "permission" and pending.status == "pending"
    assert COMMAND in pending.input["command"]
    assert harness.session(sid).pending_approvals == 1
    assert not (worktree / "ran.txt").exists()  # it waits for the decision
    request_events = [e for e in _approval_events(harness, sid) if e.content.type == "approval_request"]
    assert request_events[0].metadata["approval_id"] == pending.id

    decided = _decide(harness, sid, pending.id, "allow")
    assert decided.status == "allowed" and decided.decided_by == "user"
    harness.wait_turns(sid, 1, timeout=120)
    assert (worktree / "ran.txt").read_text() == "approved"
    assert harness.session(sid).pending_approvals == 0
    kinds = [(e.content.type, e.metadata["approval_status"]) for e in _approval_events(harness, sid)]
    assert kinds == [("approval_request", "pending"), ("approval_decision", "allowed")]
    # Decided once: a second decision is refused and changes nothing.
    with pytest.raises(grpc.RpcError) as err:
        _decide(harness, sid, pending.id, "deny")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "allowed already" in err.value.details()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_denied_command_does_not_run_and_the_model_reads_why(harness, git_repo, model_server, provider):
    model_server.script("run the check", command=COMMAND, text="understood")
    sid, worktree = _launch(harness, git_repo, provider, "please run the check")
    pending = _pending(harness, sid)
    _decide(harness, sid, pending.id, "deny", message="not on a Friday, use the staging box")
    harness.wait_turns(sid, 1, timeout=120)
    assert not (worktree / "ran.txt").exists()
    wait_for(
        lambda: any("not on a Friday" in r.text_dump() for r in model_server.turn_requests()),
        what="the model to receive the reason",
    )
    assert _approvals(harness, sid)[0].status == "denied"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_remembered_command_runs_unasked_the_next_time(harness, git_repo, model_server, provider):
    model_server.script("run the check", command=COMMAND, text="done once")
    model_server.script("once more", command=COMMAND, text="done twice")
    sid, worktree = _launch(harness, git_repo, provider, "please run the check")
    _decide(harness, sid, _pending(harness, sid).id, "allow", remember=True)
    harness.wait_turns(sid, 1, timeout=120)
    (worktree / "ran.txt").unlink()
    harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="once more please"), timeout=10)
    harness.wait_turns(sid, 2, timeout=120)
    assert (worktree / "ran.txt").read_text() == "approved"
    approvals = _approvals(harness, sid)
    # Codex remembers accepted-for-session commands itself and may not ask again; claude asks and the
    # daemon's rule answers. Either way no second approval waited for a person.
    assert approvals[0].decided_by == "user"
    assert all(a.decided_by == "rule" and a.status == "allowed" for a in approvals[1:])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_allow_list_rule_lets_its_command_run_unasked(harness, git_repo, model_server, provider):
    model_server.script("run the check", command=COMMAND, text="ran")
    sid, worktree = _launch(harness, git_repo, provider, "please run the check", allowed_tools=["Bash(python3 -c:*)"])
    harness.wait_turns(sid, 1, timeout=120)
    assert (worktree / "ran.txt").read_text() == "approved"
    assert all(a.decided_by == "rule" for a in _approvals(harness, sid))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deny_permissions_refuse_the_command_without_asking(harness, git_repo, model_server, provider):
    model_server.script("run the check", command=COMMAND, text="could not")
    sid, worktree = _launch(harness, git_repo, provider, "please run the check", permissions="deny")
    harness.wait_turns(sid, 1, timeout=120)
    assert not (worktree / "ran.txt").exists()
    assert _approvals(harness, sid) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plan_mode_writes_no_file(harness, git_repo, model_server, provider):
    model_server.script("write the plan", write_file=("plan.txt", "step one"), text="planned")
    sid, worktree = _launch(harness, git_repo, provider, "please write the plan", mode="plan")
    harness.wait_turns(sid, 1, timeout=120)
    assert not (worktree / "plan.txt").exists()
    assert _approvals(harness, sid) == []  # refused, not asked: plan mode reads and plans only


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_pending_approval_nobody_answers_is_refused_after_the_timeout(harness, git_repo, model_server, provider):
    model_server.script("run the check", command=COMMAND, text="gave up")
    sid, worktree = _launch(harness, git_repo, provider, "please run the check", approval_timeout_seconds=2)
    harness.wait_turns(sid, 1, timeout=120)
    approval = _approvals(harness, sid)[0]
    assert approval.status == "expired" and approval.decided_by == "timeout"
    assert not (worktree / "ran.txt").exists()
    if provider == "claude_code":  # codex's decline carries no words (only a person's reason is steered in)
        assert any("No decision was made within 2 seconds" in r.text_dump() for r in model_server.turn_requests())


def test_another_owner_neither_sees_nor_decides_an_approval(harness, git_repo, model_server):
    model_server.script("run the check", command=COMMAND)
    sid, worktree = _launch(harness, git_repo, "claude_code", "please run the check")
    pending = _pending(harness, sid)
    for call in (
        lambda: _approvals(harness, sid, owner="mallory"),
        lambda: _decide(harness, sid, pending.id, "allow", owner="mallory"),
        lambda: _decide(harness, sid, "ap-0000000000000000", "allow"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        _decide(harness, sid, pending.id, "maybe")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("decision")
    assert _approvals(harness, sid)[0].status == "pending"
    assert not (worktree / "ran.txt").exists()


def test_a_question_gets_its_answer_back_to_claude(harness, git_repo, model_server):
    questions = [
        {
            "question": "Which color should the button be?",
            "header": "Color",
            "multiSelect": False,
            "options": [{"label": "teal", "description": "calm"}, {"label": "red", "description": "loud"}],
        }
    ]
    model_server.script("pick a color", tool=("AskUserQuestion", {"questions": questions}), text="teal it is")
    sid, _ = _launch(harness, git_repo, "claude_code", "please pick a color")
    pending = _pending(harness, sid)
    assert pending.kind == "question" and pending.tool_name == "AskUserQuestion"
    answers = struct_pb2.Struct()
    answers.update({"answers": {"Which color should the button be?": "teal"}})
    _decide(harness, sid, pending.id, "allow", updated_input=answers)
    harness.wait_turns(sid, 1, timeout=120)
    wait_for(
        lambda: any("teal" in r.text_dump() and r.after_tool for r in model_server.turn_requests()),
        what="the answer to reach the model",
    )


def test_a_daemon_restart_expires_the_pending_approval_with_the_reason(
    daemon_factory, claude_provider, codex_provider, git_repo, model_server
):
    model_server.script("run the check", command=COMMAND)
    config = provider_table(claude_provider, codex_provider)
    first = Harness(daemon_factory(config=config, name="approvals"))
    sid, worktree = _launch(first, git_repo, "claude_code", "please run the check")
    pending = _pending(first, sid)
    first.proc.signal(signal.SIGKILL)
    first.proc.wait()
    first.proc.socket_path.unlink(missing_ok=True)

    second = Harness(daemon_factory(config=config, name="approvals"))
    approval = wait_for(lambda: (a := _approvals(second, sid)) and a[0], what="the approval after the restart")
    assert approval.id == pending.id and approval.status == "expired"
    assert "daemon restarted" in approval.message
    with pytest.raises(grpc.RpcError) as err:
        _decide(second, sid, pending.id, "allow")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert not (worktree / "ran.txt").exists()
