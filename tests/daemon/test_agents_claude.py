"""The real claude CLI driven by AgentRunner against the scripted model server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from daemon.agents import TurnSpec, adapter_for
from daemon.config import ProviderConfig
from daemon.runner import AgentRunner
from tests.support.agents import EventSink, live_group_members
from tests.support.git_repos import make_repo
from tests.support.model_server import ModelServer
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
async def make_runner(claude_provider: ProviderConfig) -> AsyncIterator[Callable[..., tuple[AgentRunner, EventSink]]]:
    runners: list[AgentRunner] = []

    def make(spec: TurnSpec) -> tuple[AgentRunner, EventSink]:
        sink = EventSink()
        runner = AgentRunner(
            adapter_for("claude_code", claude_provider), spec, on_event=sink.on_event, on_exit=sink.on_exit
        )
        runners.append(runner)
        return runner, sink

    yield make
    for runner in runners:
        await runner.stop(grace=2)


async def test_claude_turn_uses_write_tool_and_reports_events_in_order(make_runner, repo, model_server):
    target = repo / "hello.txt"
    model_server.script("create the file", write_file=(str(target), "hello from claude\n"), text="file written")
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="please create the file"))

    pid = await runner.start()
    assert pid is not None
    chosen = runner.provider_session_id  # known before the first turn: we pass --session-id
    assert chosen
    await sink.wait_turns(1)

    assert target.read_text() == "hello from claude\n"
    kinds = [(e.role, e.content["type"]) for e in sink.events]
    assert kinds == [
        ("system", "system"),
        ("assistant", "tool_use"),
        ("tool", "tool_result"),
        ("assistant", "text"),
        ("system", "system"),
    ]
    init, tool_use, tool_result, text, done = sink.events
    assert init.provider_session_id == chosen == runner.provider_session_id
    assert tool_use.content["name"] == "Write"
    assert tool_use.content["arguments"] == {"file_path": str(target), "content": "hello from claude\n"}
    assert tool_result.content["tool_use_id"] == tool_use.content["tool_use_id"]
    assert tool_result.content["is_error"] is False and "hello.txt" in tool_result.content["output"]
    assert text.content["text"] == "file written"
    assert done.turn_complete and done.turn_error is None
    assert done.metadata["usage"]["output_tokens"] > 0 and "total_cost_usd" in done.metadata
    assert runner.turn_running is False and runner.running


async def test_claude_interrupt_ends_the_slow_turn_and_keeps_the_process(make_runner, repo, model_server):
    model_server.script("take your time", text="never seen", delay=60)
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="take your time"))
    await runner.start()
    await model_server_saw(model_server, "take your time")
    pid = runner.pid

    await runner.interrupt()
    await sink.wait_turns(1, timeout=30)

    end = next(e for e in sink.events if e.turn_complete)
    assert end.turn_error
    assert not any(e.content.get("text") == "never seen" for e in sink.events)
    assert runner.pid == pid and runner.running and not runner.turn_running

    await runner.send("are you still there")
    await sink.wait_turns(2)
    assert sink.of_type("text")[-1].content["text"] == "ok: are you still there"


async def test_claude_stop_ends_the_process_group_and_closes_every_pipe(make_runner, repo, model_server):
    fds_before = set(os.listdir("/proc/self/fd"))
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="hi"))
    pid = await runner.start()
    await sink.wait_turns(1)

    code = await runner.stop(grace=5)
    again = await runner.stop(grace=5)

    assert code == again and runner.pid is None and not runner.running
    assert sink.exits == [(code, None)]
    await poll(lambda: live_group_members(pid) == [], timeout=10, what="the process group to be gone")
    await poll(lambda: set(os.listdir("/proc/self/fd")) <= fds_before, timeout=10, what="no new open fds")


async def model_server_saw(server: ModelServer, text: str) -> None:
    """Wait until the model server has received a turn request for `text`."""
    await poll(
        lambda: any(r.user_text == text for r in server.turn_requests()),
        timeout=30,
        what=f"the model request for {text!r}",
    )
