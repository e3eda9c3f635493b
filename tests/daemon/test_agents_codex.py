"""The real codex CLI driven by AgentRunner (one `codex app-server` per session) against the scripted model server.

No supervisor answers approvals here, so these runs use permissions "auto" (codex asks nothing).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from daemon.agents import TurnSpec, adapter_for
from daemon.config import ProviderConfig
from daemon.runner import AgentRunner
from tests.support.agents import EventSink, live_group_members
from tests.support.git_repos import make_repo
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
async def make_runner(codex_provider: ProviderConfig) -> AsyncIterator[Callable[..., tuple[AgentRunner, EventSink]]]:
    runners: list[AgentRunner] = []

    def make(spec: TurnSpec) -> tuple[AgentRunner, EventSink]:
        sink = EventSink()
        spec = replace(spec, permissions="auto")
        runner = AgentRunner(adapter_for("codex", codex_provider), spec, on_event=sink.on_event, on_exit=sink.on_exit)
        runners.append(runner)
        return runner, sink

    yield make
    for runner in runners:
        await runner.stop(grace=2)


async def test_codex_turn_runs_a_command_that_writes_a_file_and_reports_events_in_order(
    make_runner, repo, model_server
):
    target = repo / "notes.txt"
    model_server.script("write notes", write_file=(str(target), "notes from codex"), text="notes written")
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="please write notes"))

    pid = await runner.start()
    assert pid is not None
    await sink.wait_turns(1)

    assert target.read_text() == "notes from codex"
    kinds = [(e.role, e.content["type"]) for e in sink.events]
    assert kinds == [
        ("system", "system"),
        ("assistant", "tool_use"),
        ("tool", "tool_result"),
        ("assistant", "text"),
        ("system", "system"),
    ]
    started, tool_use, tool_result, text, done = sink.events
    assert started.provider_session_id and runner.provider_session_id == started.provider_session_id
    assert tool_use.content["name"] == "command_execution" and "notes.txt" in tool_use.content["arguments"]["command"]
    assert tool_result.content["tool_use_id"] == tool_use.content["tool_use_id"]
    assert tool_result.content["success"] is True and tool_result.content["is_error"] is False
    assert text.content["text"] == "notes written"
    assert done.turn_complete and done.turn_error is None and done.metadata["usage"]["output_tokens"] > 0
    # Between turns the one app-server process stays, waiting for the next message.
    assert runner.pid == pid and runner.running and not runner.turn_running


async def test_codex_interrupt_ends_the_slow_turn_and_the_next_message_resumes(make_runner, repo, model_server):
    model_server.script("take your time", text="never seen", delay=60)
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="take your time"))
    await runner.start()
    await poll(
        lambda: any(r.user_text == "take your time" for r in model_server.turn_requests()),
        timeout=30,
        what="the slow model request",
    )

    await runner.interrupt()
    await sink.wait_turns(1, timeout=30)

    end = next(e for e in sink.events if e.turn_complete)
    assert end.turn_error == "interrupted"
    assert not any(e.content.get("text") == "never seen" for e in sink.events)
    assert runner.running and not runner.turn_running

    await runner.send("are you still there")
    await sink.wait_turns(2)
    assert sink.of_type("text")[-1].content["text"] == "ok: are you still there"
    assert "take your time" in model_server.turn_requests("openai")[-1].text_dump()


async def test_codex_stop_during_a_turn_ends_the_process_group_and_closes_every_pipe(make_runner, repo, model_server):
    model_server.script("take your time", text="never seen", delay=60)
    fds_before = set(os.listdir("/proc/self/fd"))
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="take your time"))
    pid = await runner.start()
    await poll(
        lambda: any(r.user_text == "take your time" for r in model_server.turn_requests()),
        timeout=30,
        what="the slow model request",
    )

    await runner.stop(grace=5)
    await runner.stop(grace=5)

    assert len(sink.exits) == 1 and sink.exits[0][1] is None
    assert runner.pid is None and not runner.running
    await poll(lambda: live_group_members(pid) == [], timeout=10, what="the process group to be gone")
    await poll(lambda: set(os.listdir("/proc/self/fd")) <= fds_before, timeout=10, what="no new open fds")
