"""The daemon's trust boundaries over gRPC, with the real claude CLI: owners on one daemon never share a
provider session or a worktree, accepted messages survive a SIGKILL of the daemon, and an event no
reader could carry (too deep, too large) is sent in a safe form instead of stopping the stream."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from tests.daemon.harness import Harness, branches, content, provider_table
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

CLAUDE_ID = "5e55a000-0000-4000-8000-000000000001"


@pytest.fixture
def harness(daemon_factory, claude_provider) -> Harness:
    return Harness(daemon_factory(config=provider_table(claude_provider)))


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_one_owners_provider_session_never_reaches_another_owners_agent(harness, git_repo, model_server):
    ack = harness.launch(git_repo, owner="alice", worktree_name="alice-wt", initial_prompt="alice's secret is kiwi")
    sid = ack.session.agent_session_id
    harness.wait_turns(sid, 1)
    alice_claude = harness.session(sid).provider_session_id
    assert alice_claude and harness.session(sid).owner == "alice"
    before = branches(git_repo)

    code, details = _code(
        lambda: harness.launch(
            git_repo,
            owner="bob",
            worktree_name="bob-wt",
            resume_session_id=alice_claude,
            initial_prompt="what is the secret",
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND and "resume_session_id" in details
    # An id the daemon never recorded is refused for an owner too (claude would find it on disk).
    code, _ = _code(lambda: harness.launch(git_repo, owner="bob", resume_session_id=CLAUDE_ID))
    assert code == grpc.StatusCode.NOT_FOUND
    # Bob cannot write a transcript under Alice's id, nor relaunch Alice's Berth session.
    code, details = _code(
        lambda: harness.stub.ImportTranscript(
            pb.ImportTranscriptRequest(
                provider_session_id=alice_claude,
                owner="bob",
                repository=str(git_repo),
                worktree_name="bob-import",
                messages=[pb.TranscriptMessage(role="user", content=pb.Content(type="text", text="hi"))],
            ),
            timeout=30,
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "provider_session_id" in details
    code, _ = _code(lambda: harness.launch(git_repo, owner="bob", agent_session_id=sid))
    assert code == grpc.StatusCode.NOT_FOUND

    assert branches(git_repo) == before
    assert not any("what is the secret" in r.user_text for r in model_server.turn_requests())
    # Alice herself resumes her conversation by its provider id.
    again = harness.launch(
        git_repo,
        owner="alice",
        worktree_name="alice-again",
        resume_session_id=alice_claude,
        initial_prompt="what is my secret",
    )
    harness.wait_turns(again.session.agent_session_id, 1)
    request = [r for r in model_server.turn_requests() if "what is my secret" in r.user_text][-1]
    assert "alice's secret is kiwi" in request.text_dump()


def test_a_worktree_is_one_owners_and_one_running_sessions(harness, git_repo):
    first = harness.launch(git_repo, owner="alice", worktree_name="shared")
    harness.started(first)
    path = Path(first.payload["worktree_path"])
    (path / "alice-draft.txt").write_text("uncommitted work of alice")
    before = branches(git_repo)

    code, details = _code(lambda: harness.launch(git_repo, owner="bob", worktree_name="shared"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("worktree_name:")
    assert first.session.agent_session_id not in details  # nothing of Alice's is named to Bob
    code, details = _code(lambda: harness.launch(git_repo, owner="alice", worktree_name="shared"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and first.session.agent_session_id in details
    assert branches(git_repo) == before
    assert len(harness.stub.ListSessions(pb.ListSessionsRequest(), timeout=10).sessions) == 1

    # Bob cannot remove it; Alice cannot remove it dirty without force (checked even while it runs).
    code, _ = _code(
        lambda: harness.stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(agent_session_id=first.session.agent_session_id, owner="bob", force=True),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = _code(
        lambda: harness.stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(agent_session_id=first.session.agent_session_id, owner="alice", check_only=True),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("force:")
    harness.stub.PauseSession(pb.SessionRequest(agent_session_id=first.session.agent_session_id), timeout=30)
    code, _ = _code(
        lambda: harness.stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(agent_session_id=first.session.agent_session_id, owner="alice"), timeout=10
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (path / "alice-draft.txt").read_text() == "uncommitted work of alice"

    # A second session of Alice's may take the paused session's worktree over; the first then cannot
    # resume into it while the second runs, nor remove it.
    second = harness.launch(git_repo, owner="alice", worktree_name="shared")
    harness.started(second)
    assert second.payload["worktree_path"] == str(path)
    code, details = _code(
        lambda: harness.stub.ResumeSession(
            pb.ResumeSessionRequest(agent_session_id=first.session.agent_session_id), timeout=30
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and second.session.agent_session_id in details
    code, details = _code(
        lambda: harness.stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(agent_session_id=first.session.agent_session_id, owner="alice", force=True),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and second.session.agent_session_id in details
    assert path.is_dir()


def test_messages_acknowledged_before_a_daemon_sigkill_reach_the_agent_after_the_restart(
    daemon_factory, claude_provider, git_repo, model_server
):
    model_server.script("slow start", text="slow answer", delay=4)
    config = provider_table(claude_provider)
    first = Harness(daemon_factory(config=config, name="durable"))
    sid = first.launch(git_repo, worktree_name="durable", initial_prompt="slow start").session.agent_session_id
    first.wait_events(sid, lambda evs: any(e.role == "user" for e in evs))
    wait_for(
        lambda: any("slow start" in r.user_text for r in model_server.turn_requests()),
        what="the first turn to reach the model",
    )
    acks = [
        first.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content=f"message {i:02}"), timeout=10)
        for i in range(20)
    ]
    assert {a.status for a in acks} == {"queued"}  # a turn runs: they wait, stored
    first.proc.signal(signal.SIGKILL)
    first.proc.wait()
    first.proc.socket_path.unlink(missing_ok=True)

    second = Harness(daemon_factory(config=config, name="durable"))

    def answered(evs):
        texts = [e.content.text for e in evs if e.role == "assistant" and e.content.type == "text"]
        return all(f"ok: message {i:02}" in texts for i in range(20)) and texts

    events = second.wait_events(sid, answered, timeout=240, what="answers to all 20 messages")
    texts = [e.content.text for e in events if e.role == "assistant" and e.content.type == "text"]
    order = [texts.index(f"ok: message {i:02}") for i in range(20)]
    assert order == sorted(order)  # delivered in the order they were accepted
    # The turn that was with the agent at the crash is reported, not silently dropped.
    cut = [e for e in events if e.content.type == "error" and "turn did not finish" in e.content.message]
    assert len(cut) <= 1
    delivered = [r for r in model_server.turn_requests() if r.user_text.startswith("message ")]
    assert sorted({r.user_text for r in delivered}) == [f"message {i:02}" for i in range(20)]


def test_an_event_too_deep_or_too_large_to_carry_is_sent_in_a_safe_form_and_the_stream_goes_on(
    harness, git_repo, model_server, tmp_path
):
    deep: dict = {"leaf": "bottom"}
    for _ in range(200):
        deep = {"n": deep}
    model_server.script(
        "go deep",
        tool=("Write", {"file_path": str(tmp_path / "deep.txt"), "content": "x", "nested": deep}),
        text="deep done",
    )
    big = "y" * (20 * 1024 * 1024)
    model_server.script(
        "go big", tool=("Write", {"file_path": str(tmp_path / "big.txt"), "content": big}), text="big done"
    )
    # Writes outside the worktree would wait for an approval; refused unasked, their events are as large.
    ack = harness.launch(git_repo, worktree_name="deep", initial_prompt="go deep", permissions="deny")
    sid = ack.session.agent_session_id
    harness.wait_events(sid, lambda evs: any(e.content.text == "deep done" for e in evs), timeout=120)
    harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="go big"), timeout=10)
    harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="after both"), timeout=10)

    events = harness.wait_events(sid, lambda evs: any(e.content.text == "ok: after both" for e in evs), timeout=180)
    history = harness.events(sid)  # history_only reads past them too
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    uses = [e for e in events if e.content.type == "tool_use" and e.content.name == "Write"]
    deep_use = next(e for e in uses if "nested" in content(e)["arguments"])
    assert isinstance(content(deep_use)["arguments"]["nested"]["n"]["n"], (dict, str))
    assert any("nested deeper" in note for note in deep_use.metadata["carriable"])
    big_use = next(e for e in uses if "big.txt" in content(e)["arguments"].get("file_path", ""))
    assert big_use.ByteSize() < 2 * 1024 * 1024
    assert "cut by berth" in content(big_use)["arguments"]["content"]
    assert any("content.arguments" in note for note in big_use.metadata["carriable"])


def test_twenty_concurrent_first_machine_info_calls_all_answer(harness):
    calls = [harness.stub.GetMachineInfo.future(pb.GetMachineInfoRequest(), timeout=60) for _ in range(20)]
    infos = [c.result() for c in calls]
    assert {i.git_version for i in infos} != {""} and len({i.claude_version for i in infos}) == 1


def test_concurrent_launches_into_one_worktree_name_start_exactly_one_session(harness, git_repo):
    def launch(_):
        try:
            return harness.launch(git_repo, owner="alice", worktree_name="contended")
        except grpc.RpcError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(launch, range(6)))
    acks = [r for r in results if isinstance(r, pb.LaunchSessionResponse)]
    refused = [r for r in results if isinstance(r, grpc.RpcError)]
    assert len(acks) == 1 and len(refused) == 5, results
    assert all(r.code() == grpc.StatusCode.FAILED_PRECONDITION and "worktree_name" in r.details() for r in refused)
    assert len(harness.stub.ListSessions(pb.ListSessionsRequest(), timeout=10).sessions) == 1
