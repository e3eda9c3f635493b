"""The daemon end to end over gRPC: real daemon process, real git, real claude and codex CLIs
against the scripted model server."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from tests.daemon.harness import Harness, branches, content, process_alive, provider_table, turns
from tests.support.git_repos import git, head_commit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

PROVIDERS = ["claude_code", "codex"]


@pytest.fixture
def harness(daemon_factory, claude_provider, codex_provider) -> Harness:
    return Harness(daemon_factory(config=provider_table(claude_provider, codex_provider)))


def _worktree_list(repo: Path) -> str:
    return git(repo, "worktree", "list", "--porcelain")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_launch_creates_worktree_runs_a_tool_turn_and_streams_contiguous_events(
    harness, git_repo, model_server, provider
):
    name = f"feature/{provider}-one"
    target = harness.worktree_path(git_repo, name) / "hello.txt"
    model_server.script("please write hello", write_file=(str(target), "hello from the agent\n"), text="wrote it")

    ack = harness.launch(
        git_repo,
        provider=provider,
        worktree_name=name,
        workspace_id="ws-1",
        initial_prompt="please write hello",
        agent_session_id=f"as-{provider}",
    )

    assert ack.status == "ok"
    payload = json.loads(json.dumps(dict(ack.payload)))
    assert payload["agent_session_id"] == f"as-{provider}"
    assert payload["branch"] == name and payload["provider"] == provider
    worktree = Path(payload["worktree_path"])
    assert worktree == target.parent and worktree.is_dir()
    assert f"branch refs/heads/{name}" in _worktree_list(git_repo)
    assert git(worktree, "rev-parse", "HEAD") == head_commit(git_repo)

    events = harness.wait_turns(f"as-{provider}", 1)
    assert target.read_text() == "hello from the agent\n"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [(e.role, e.content.type) for e in events]
    assert ("user", "text") in kinds
    assert ("assistant", "tool_use") in kinds
    assert any(e.content.type == "tool_result" for e in events)
    assert any(e.role == "assistant" and e.content.type == "text" and "wrote it" in e.content.text for e in events)
    # The tool result comes after its tool call, the final text after both.
    use = kinds.index(("assistant", "tool_use"))
    result = next(i for i, k in enumerate(kinds) if k[1] == "tool_result")
    final = max(i for i, e in enumerate(events) if e.role == "assistant" and "wrote it" in e.content.text)
    assert use < result < final, kinds
    session = harness.wait_status(f"as-{provider}", "active")
    assert session.provider_session_id, "the provider's session id is recorded"
    assert any(e.status == "active" for e in events)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_follow_up_message_runs_a_second_turn_in_the_same_agent_session(harness, git_repo, model_server, provider):
    ack = harness.launch(git_repo, provider=provider, worktree_name="follow-up", initial_prompt="first question")
    sid = ack.session.agent_session_id
    harness.wait_turns(sid, 1)
    first_provider_id = harness.session(sid).provider_session_id

    sent = harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="second question"), timeout=10)

    assert sent.message_id and sent.status in ("sent", "queued") and sent.timestamp
    events = harness.wait_turns(sid, 2)
    texts = [e.content.text for e in events if e.role == "assistant" and e.content.type == "text"]
    assert "ok: first question" in texts[0] and "ok: second question" in texts[-1]
    assert harness.session(sid).provider_session_id == first_provider_id
    # The model was asked the second question with the first one in its history.
    last = [r for r in model_server.turn_requests() if "second question" in r.user_text][-1]
    assert "first question" in last.text_dump()


def test_messages_sent_during_a_turn_are_queued_and_delivered_in_order(harness, git_repo, model_server):
    model_server.script("slow one", text="slow answer", delay=1.5)
    sid = harness.launch(git_repo, worktree_name="queue", initial_prompt="slow one").session.agent_session_id
    harness.wait_events(sid, lambda evs: any(e.role == "user" for e in evs))

    answers = [
        harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content=f"queued {i}"), timeout=10)
        for i in range(3)
    ]

    assert len({a.message_id for a in answers}) == 3
    assert [a.status for a in answers] == ["queued"] * 3  # a turn was running: each waited its turn
    events = harness.wait_turns(sid, 4)
    replies = [e.content.text for e in events if e.role == "assistant" and e.content.type == "text"]
    assert [r for r in replies if r.startswith("ok: queued")] == ["ok: queued 0", "ok: queued 1", "ok: queued 2"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pause_then_resume_by_resume_id_gives_the_model_the_earlier_history(harness, git_repo, model_server, provider):
    ack = harness.launch(
        git_repo, provider=provider, worktree_name="pausing", initial_prompt="remember the word avocado"
    )
    sid = ack.session.agent_session_id
    harness.wait_turns(sid, 1)
    pid = harness.started(ack).pid

    paused = harness.stub.PauseSession(pb.SessionRequest(agent_session_id=sid), timeout=30)

    assert paused.status == "paused" and paused.pid == 0
    if pid:
        wait_for(lambda: not process_alive(int(pid)), timeout=15, what="agent process gone")
    assert Path(paused.worktree_path).is_dir() and paused.provider_session_id
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="hello?"), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    resumed = harness.stub.ResumeSession(
        pb.ResumeSessionRequest(agent_session_id=sid, prompt="what was the word"), timeout=30
    )

    assert resumed.status == "active"
    assert resumed.provider_session_id == paused.provider_session_id
    harness.wait_turns(sid, 2)
    request = [r for r in model_server.turn_requests() if "what was the word" in r.user_text][-1]
    assert "remember the word avocado" in request.text_dump()


def test_imported_transcript_is_resumed_by_claude_and_sent_to_the_model(harness, git_repo, model_server):
    claude_id = "3f1d9a52-5a3c-4c47-9d55-0e6f6f1e2b11"
    messages = [
        pb.TranscriptMessage(
            message_id="m1", role="user", content=pb.Content(type="text", text="the secret is papaya")
        ),
        pb.TranscriptMessage(message_id="m2", role="assistant", content=pb.Content(type="text", text="noted: papaya")),
    ]
    imported = harness.stub.ImportTranscript(
        pb.ImportTranscriptRequest(
            provider_session_id=claude_id, messages=messages, repository=str(git_repo), worktree_name="imported"
        ),
        timeout=30,
    )
    assert imported.message_count == 2 and Path(imported.path).is_file()
    assert imported.worktree_created and imported.branch == "imported"

    ack = harness.launch(
        git_repo, worktree_name="imported", resume_session_id=claude_id, initial_prompt="what is the secret"
    )

    assert ack.status == "ok" and ack.payload["worktree_path"] == imported.worktree_path
    harness.wait_turns(ack.session.agent_session_id, 1)
    request = [r for r in model_server.turn_requests("anthropic") if "what is the secret" in r.user_text][-1]
    dump = request.text_dump()
    assert "the secret is papaya" in dump and "noted: papaya" in dump


def test_two_concurrent_launches_of_one_agent_session_id_start_one_process(harness, git_repo):
    def launch():
        return harness.launch(git_repo, worktree_name="twice", agent_session_id="as-twice")

    with ThreadPoolExecutor(2) as pool:
        acks = list(pool.map(lambda _: launch(), range(2)))

    assert {a.status for a in acks} == {"ok"}
    assert acks[0].session.agent_session_id == acks[1].session.agent_session_id == "as-twice"
    assert harness.started(acks[0]).pid != 0
    assert sorted(a.payload["reused"] for a in acks) == [False, True]
    listed = harness.stub.ListSessions(pb.ListSessionsRequest(), timeout=10).sessions
    assert [s.agent_session_id for s in listed] == ["as-twice"]


def test_ten_concurrent_launches_into_one_repository_make_ten_worktrees(harness, git_repo):
    with ThreadPoolExecutor(10) as pool:
        acks = list(pool.map(lambda i: harness.launch(git_repo, worktree_name=f"par-{i}"), range(10)))

    assert {a.status for a in acks} == {"ok"}
    paths = {a.payload["worktree_path"] for a in acks}
    assert len(paths) == 10 and all(Path(p).is_dir() for p in paths)
    assert {f"par-{i}" for i in range(10)} <= branches(git_repo)
    listing = _worktree_list(git_repo)
    assert all(f"worktree {p}\n" in listing for p in paths)


def test_stop_ends_the_agents_whole_process_group_and_completes_the_session(harness, git_repo):
    ack = harness.launch(git_repo, worktree_name="stopping")
    sid, pid = ack.session.agent_session_id, int(harness.started(ack).pid)
    assert process_alive(pid)

    stopped = harness.stub.StopSession(pb.StopSessionRequest(agent_session_id=sid, grace_seconds=3), timeout=30)

    assert stopped.status == "completed" and stopped.pid == 0
    wait_for(lambda: not process_alive(pid), timeout=10, what="agent gone")
    statuses = [e.status for e in harness.events(sid) if e.status]
    assert statuses[-1] == "completed"


def test_get_machine_info_reports_versions_and_sessions(harness, git_repo):
    harness.launch(git_repo, worktree_name="info")

    info = harness.stub.GetMachineInfo(pb.GetMachineInfoRequest(), timeout=30)

    assert info.hostname and info.git_version.startswith("2.")
    assert info.claude_version == "2.1.328" and info.codex_version == "0.169.0"
    assert info.sessions_by_status["active"] == 1 and info.running_sessions == 1


def test_remove_worktree_refuses_dirty_unless_forced_and_deletes_the_branch_when_asked(harness, git_repo):
    ack = harness.launch(git_repo, worktree_name="removable")
    sid, path = ack.session.agent_session_id, ack.payload["worktree_path"]
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.RemoveWorktree(pb.RemoveWorktreeRequest(worktree_path=path), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "in use" in err.value.details()
    harness.stub.StopSession(pb.StopSessionRequest(agent_session_id=sid), timeout=30)
    (Path(path) / "scratch.txt").write_text("uncommitted")

    with pytest.raises(grpc.RpcError) as err:
        harness.stub.RemoveWorktree(pb.RemoveWorktreeRequest(worktree_path=path), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    removed = harness.stub.RemoveWorktree(
        pb.RemoveWorktreeRequest(worktree_path=path, force=True, delete_branch=True), timeout=10
    )

    assert removed.removed and removed.branch_deleted and not Path(path).exists()
    assert "removable" not in branches(git_repo)


def test_events_survive_a_daemon_restart_and_the_session_is_resumed(
    daemon_factory, claude_provider, git_repo, model_server
):
    config = provider_table(claude_provider)
    config["daemon"] = {"stop_agents_on_shutdown": False}
    first = Harness(daemon_factory(config=config, name="restart"))
    sid = first.launch(git_repo, worktree_name="restart", initial_prompt="before restart").session.agent_session_id
    before = first.wait_turns(sid, 1)
    old_pid = int(first.session(sid).pid)
    first.proc.stop()

    second = Harness(daemon_factory(config=config, name="restart"))

    history = second.events(sid)
    assert [e.seq for e in history][: len(before)] == [e.seq for e in before]
    assert [content(e) for e in history][: len(before)] == [content(e) for e in before]
    session = second.wait_status(sid, "active")
    assert session.pid and session.pid != old_pid and not process_alive(old_pid)
    second.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="after restart"), timeout=10)
    events = second.wait_events(sid, lambda evs: turns(evs) >= 2, what="a turn after the restart")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    request = [r for r in model_server.turn_requests() if "after restart" in r.user_text][-1]
    assert "before restart" in request.text_dump()


def test_launch_from_a_clone_url_clones_once_into_the_repos_root(harness, git_repo):
    url = f"file://{git_repo}"

    acks = [
        harness.stub.LaunchSession(
            pb.LaunchSessionRequest(
                repository=url, worktree_name=f"from-url-{i}", session_settings=pb.SessionSettings()
            ),
            timeout=60,
        )
        for i in range(2)
    ]

    assert {a.status for a in acks} == {"ok"}
    repos_root = Path(harness.proc.config["daemon"]["repos_root"])
    clones = [p for p in repos_root.iterdir() if p.is_dir()]
    assert len(clones) == 1
    assert {a.session.repository for a in acks} == {str(clones[0])}
    for ack in acks:
        assert git(Path(ack.payload["worktree_path"]), "rev-parse", "HEAD") == head_commit(git_repo)


def test_interrupt_ends_a_slow_turn_and_the_session_takes_the_next_message(harness, git_repo, model_server):
    model_server.script("take your time", text="too late", delay=30)
    ack = harness.launch(git_repo, worktree_name="interrupting", initial_prompt="take your time")
    sid, pid = ack.session.agent_session_id, int(harness.started(ack).pid)
    wait_for(lambda: harness.session(sid).turn_running, timeout=30, what="the slow turn to start")

    harness.stub.InterruptSession(pb.SessionRequest(agent_session_id=sid), timeout=10)

    wait_for(lambda: not harness.session(sid).turn_running, timeout=30, what="the turn to end")
    assert process_alive(pid) and harness.session(sid).status == "active"
    harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="after the interrupt"), timeout=10)
    events = harness.wait_events(
        sid,
        lambda evs: any("ok: after the interrupt" in e.content.text for e in evs),
        what="the answer after the interrupt",
    )
    assert not any("too late" in e.content.text for e in events)
    assert any(e.content.message == "interrupted" for e in events)


def test_an_agent_killed_from_outside_fails_the_session_with_its_exit_code(harness, git_repo):
    ack = harness.launch(git_repo, worktree_name="killed")
    sid, pid = ack.session.agent_session_id, int(harness.started(ack).pid)

    os.killpg(pid, signal.SIGKILL)

    session = harness.wait_status(sid, "failed")
    assert session.pid == 0 and "-9" in session.last_error
    events = harness.events(sid)
    assert events[-1].status == "failed"
    assert any(e.content.type == "error" and e.content.is_error for e in events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_a_daemon_killed_with_sigkill_comes_back_with_its_sessions(
    daemon_factory, claude_provider, git_repo, model_server
):
    config = provider_table(claude_provider)
    first = Harness(daemon_factory(config=config, name="crash"))
    sid = first.launch(git_repo, worktree_name="crash", initial_prompt="before the crash").session.agent_session_id
    before = first.wait_turns(sid, 1)
    old_pid = int(first.session(sid).pid)
    first.proc.signal(signal.SIGKILL)
    first.proc.wait()
    first.proc.socket_path.unlink(missing_ok=True)  # a killed daemon cannot clean up; the next start must cope

    second = Harness(daemon_factory(config=config, name="crash"))

    assert [e.seq for e in second.events(sid)][: len(before)] == [e.seq for e in before]
    session = second.wait_status(sid, "active")
    assert session.pid != old_pid
    wait_for(lambda: not process_alive(old_pid), timeout=15, what="the orphaned agent to be gone")
    second.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="after the crash"), timeout=10)
    second.wait_events(
        sid, lambda evs: any("ok: after the crash" in e.content.text for e in evs), what="an answer after the crash"
    )
    request = [r for r in model_server.turn_requests() if "after the crash" in r.user_text][-1]
    assert "before the crash" in request.text_dump()


def test_a_pooled_launch_gives_a_worktree_indistinguishable_from_a_fresh_one(daemon_factory, claude_provider, git_repo):
    config = provider_table(claude_provider)
    config["pool"] = {"size": 2}
    harness = Harness(daemon_factory(config=config))
    first = harness.launch(git_repo, worktree_name="warm-up")
    pool_dir = Path(first.payload["worktree_path"]).parent / ".pool"
    wait_for(lambda: pool_dir.is_dir() and len(list(pool_dir.iterdir())) == 2, timeout=60, what="two ready worktrees")

    ack = harness.launch(git_repo, worktree_name="feature/pooled")

    assert ack.payload["pooled"] is True
    path = Path(ack.payload["worktree_path"])
    assert path == harness.worktree_path(git_repo, "feature/pooled") and path.is_dir()
    assert f"worktree {path}\nHEAD {head_commit(git_repo)}\nbranch refs/heads/feature/pooled\n" in _worktree_list(
        git_repo
    )
    assert git(path, "status", "--porcelain") == ""
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "feature/pooled"
    wait_for(lambda: len(list(pool_dir.iterdir())) == 2, timeout=60, what="the pool to refill")


def _repo_with_files(path: Path, files: int) -> Path:
    """A committed repository of `files` small files (its checkout takes a noticeable moment)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i in range(files):
        sub = path / "src" / f"d{i // 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"{files} files")
    return path


@pytest.fixture
def unpooled(daemon_factory, claude_provider) -> Harness:
    config = provider_table(claude_provider)
    config["pool"] = {"size": 0}
    return Harness(daemon_factory(config=config))


def test_a_launch_without_a_ready_worktree_answers_before_the_checkout_and_queues_messages_for_the_agent(
    unpooled, tmp_path, model_server
):
    repo = _repo_with_files(tmp_path / "big", 1500)

    ack = unpooled.launch(repo, worktree_name="deferred", initial_prompt="first words")
    sid = ack.session.agent_session_id
    unpooled.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="second words"), timeout=10)

    assert ack.status == "ok" and ack.payload["checkout_pending"] is True
    assert ack.payload["session_status"] == "created" and ack.payload["pid"] == 0
    started = unpooled.started(ack)
    assert started.pid > 0 and process_alive(started.pid)
    events = unpooled.wait_turns(sid, 2)
    replies = [e.content.text for e in events if e.role == "assistant" and e.content.type == "text"]
    assert [r for r in replies if r.startswith("ok: ")] == ["ok: first words", "ok: second words"]
    assert [e.status for e in events if e.status] == ["created", "active"]
    path = Path(ack.payload["worktree_path"])
    assert git(path, "status", "--porcelain") == "" and git(path, "rev-parse", "--abbrev-ref", "HEAD") == "deferred"
    assert len(list((path / "src").rglob("*.txt"))) == 1500


def test_stopping_right_after_a_deferred_launch_leaves_no_agent_and_a_complete_worktree(unpooled, tmp_path):
    repo = _repo_with_files(tmp_path / "big", 1500)

    ack = unpooled.launch(repo, worktree_name="stopped-early", initial_prompt="never mind")
    sid = ack.session.agent_session_id
    stopped = unpooled.stub.StopSession(pb.StopSessionRequest(agent_session_id=sid, grace_seconds=3), timeout=30)

    assert ack.payload["checkout_pending"] is True
    assert stopped.status == "completed" and stopped.pid == 0
    path = Path(ack.payload["worktree_path"])
    assert git(path, "status", "--porcelain") == ""
    assert len(list((path / "src").rglob("*.txt"))) == 1500
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cwd_of(pid) == os.path.realpath(path)]


def _cwd_of(pid: str) -> str:
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return ""


def test_a_daemon_killed_before_a_deferred_agent_started_fails_it_with_complete_files_and_relaunches_it(
    daemon_factory, claude_provider, tmp_path, model_server
):
    repo = _repo_with_files(tmp_path / "big", 1500)
    config = provider_table(claude_provider)
    config["pool"] = {"size": 0}
    first = Harness(daemon_factory(config=config, name="early"))
    ack = first.launch(repo, worktree_name="early", initial_prompt="lost at the crash", agent_session_id="as-early")
    first.proc.signal(signal.SIGKILL)
    first.proc.wait()
    first.proc.socket_path.unlink(missing_ok=True)

    second = Harness(daemon_factory(config=config, name="early"))
    failed = second.wait_status("as-early", "failed")

    assert ack.payload["checkout_pending"] is True
    assert failed.pid == 0 and "before the agent started" in failed.last_error
    path = Path(ack.payload["worktree_path"])
    assert git(path, "status", "--porcelain") == "" and len(list((path / "src").rglob("*.txt"))) == 1500
    again = second.launch(repo, worktree_name="early", initial_prompt="second try", agent_session_id="as-early")
    assert again.payload["reused"] is True
    second.wait_events(
        "as-early",
        lambda evs: any(e.content.text == "ok: second try" for e in evs),
        what="the relaunched agent's answer",
    )
