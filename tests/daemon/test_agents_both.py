"""What the real claude and codex CLIs do alike under AgentRunner (against the scripted model server):
follow-up turns in one process and one provider session, queued messages in order, resume after stop.

What differs between them (the tool each writes with, interrupt, the end of the process group) is in
test_agents_claude.py and test_agents_codex.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from daemon.agents import TurnSpec, adapter_for
from daemon.runner import AgentRunner
from tests.support.agents import EventSink
from tests.support.git_repos import make_repo
from tests.support.model_server import ModelServer
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(120)

# provider → (its config fixture, the model API it speaks to the scripted server)
_AGENTS = {"claude_code": ("claude_provider", "anthropic"), "codex": ("codex_provider", "openai")}


@pytest.fixture(params=sorted(_AGENTS))
def agent(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def api(agent: str) -> str:
    return _AGENTS[agent][1]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
async def make_runner(
    agent: str, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., tuple[AgentRunner, EventSink]]]:
    provider = request.getfixturevalue(_AGENTS[agent][0])
    runners: list[AgentRunner] = []

    def make(spec: TurnSpec) -> tuple[AgentRunner, EventSink]:
        sink = EventSink()
        if agent == "codex":
            spec = replace(spec, permissions="auto")  # no supervisor here to answer its asks
        runner = AgentRunner(adapter_for(agent, provider), spec, on_event=sink.on_event, on_exit=sink.on_exit)
        runners.append(runner)
        return runner, sink

    yield make
    for runner in runners:
        await runner.stop(grace=2)


async def test_a_second_message_runs_a_second_turn_in_the_same_process_and_session(
    make_runner, repo, model_server: ModelServer, api: str
):
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="first question"))
    await runner.start()
    await sink.wait_turns(1)
    first_pid, session_id = runner.pid, runner.provider_session_id

    await runner.send("second question")
    await sink.wait_turns(2)

    assert [e.content["text"] for e in sink.of_type("text")] == ["ok: first question", "ok: second question"]
    assert runner.pid == first_pid  # the same long-lived process
    assert runner.provider_session_id == session_id
    assert {e.provider_session_id for e in sink.events if e.provider_session_id} == {session_id}
    second = model_server.turn_requests(api)[-1]
    assert second.user_text == "second question" and "ok: first question" in second.text_dump()


async def test_messages_sent_during_a_turn_wait_for_it_and_keep_their_order(
    make_runner, repo, model_server: ModelServer, api: str
):
    model_server.script("slow one", text="slow done", delay=1.0)
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="slow one"))
    await runner.start()
    await poll(lambda: runner.turn_running, timeout=30, what="the first turn (after the handshake)")
    await runner.send("then two")
    await runner.send("then three")
    assert runner.queued == 2 and runner.turn_running

    await sink.wait_turns(3)
    assert [e.content["text"] for e in sink.of_type("text")] == ["slow done", "ok: then two", "ok: then three"]
    assert [r.user_text for r in model_server.turn_requests(api)] == ["slow one", "then two", "then three"]
    assert runner.queued == 0


async def test_resume_after_stop_shows_the_model_the_earlier_history(
    make_runner, repo, model_server: ModelServer, api: str
):
    runner, sink = make_runner(TurnSpec(cwd=repo, prompt="remember the word pelican"))
    await runner.start()
    await sink.wait_turns(1)
    session_id = runner.provider_session_id
    code = await runner.stop(grace=5)
    assert sink.exits == [(code, None)] and not runner.running

    resumed, sink2 = make_runner(TurnSpec(cwd=repo, resume_id=session_id, prompt="what was the word?"))
    await resumed.start()
    await sink2.wait_turns(1)

    request = model_server.turn_requests(api)[-1]
    assert request.user_text == "what was the word?"
    assert "remember the word pelican" in request.text_dump()
    assert resumed.provider_session_id == session_id
