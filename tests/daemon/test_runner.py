"""AgentRunner edge cases with a fake agent script (crashes, stubborn process groups, junk
output, turns that end without a word); the normal paths run the real CLIs in
test_agents_claude.py and test_agents_codex.py."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from daemon.agents import TurnSpec, adapter_for
from daemon.config import ProviderConfig
from daemon.errors import FailedPrecondition
from daemon.runner import AgentRunner
from tests.support.agents import EventSink, live_group_members
from tests.support.waiting import poll

FAKE_AGENT = Path(__file__).resolve().parents[1] / "support" / "fake_agent.py"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def make_runner(tmp_path: Path) -> AsyncIterator[Callable[..., tuple[AgentRunner, EventSink]]]:
    runners: list[AgentRunner] = []

    def make(
        provider: str, mode: str, prompt: str | None = "hello", binary: str | None = None, **env: str
    ) -> tuple[AgentRunner, EventSink]:
        config = ProviderConfig(name=provider, binary=binary or str(FAKE_AGENT), env={"FAKE_AGENT_MODE": mode, **env})
        sink = EventSink()
        runner = AgentRunner(
            adapter_for(provider, config),
            TurnSpec(cwd=tmp_path, prompt=prompt),
            on_event=sink.on_event,
            on_exit=sink.on_exit,
            base_env={"PATH": os.environ["PATH"], "PYTHONPATH": ""},
        )
        runners.append(runner)
        return runner, sink

    yield make
    for runner in runners:
        await runner.stop(grace=1)


async def test_persistent_agent_crash_reports_exit_code_and_stderr_tail(make_runner):
    runner, sink = make_runner("claude_code", "claude-crash")
    await runner.start()
    await sink.wait_for(lambda s: s.exits, 20, "the exit callback")

    ((code, error),) = sink.exits
    assert code == 3 and "exited with code 3" in error and "fatal: boom" in error
    assert not runner.running and runner.pid is None and not runner.turn_running
    with pytest.raises(FailedPrecondition):
        await runner.send("anyone there?")
    assert await runner.stop(grace=1) == 3 and len(sink.exits) == 1


async def test_stop_kills_a_group_that_ignores_sigterm_once_grace_runs_out(make_runner, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    fds_before = set(os.listdir("/proc/self/fd"))
    runner, sink = make_runner("claude_code", "claude-stubborn", FAKE_AGENT_PIDFILE=str(pidfile))
    pid = await runner.start()
    await sink.wait_turns(1, timeout=20)
    await poll(pidfile.exists, timeout=10, what="the grandchild's pid file")
    grandchild = int(pidfile.read_text())
    assert grandchild in live_group_members(pid)

    code = await runner.stop(grace=0.5)

    assert code == -signal.SIGKILL
    assert sink.exits == [(code, None)]
    await poll(lambda: live_group_members(pid) == [], timeout=10, what="the process group to be gone")
    await poll(lambda: set(os.listdir("/proc/self/fd")) <= fds_before, timeout=10, what="no new open fds")


async def test_junk_output_lines_become_error_events_and_the_turn_still_completes(make_runner):
    runner, sink = make_runner("claude_code", "claude-junk")
    await runner.start()
    await sink.wait_turns(1, timeout=20)

    errors = [e for e in sink.of_type("error")]
    assert len(errors) == 2 and "this is not json" in errors[0].content["message"]
    assert sink.of_type("text")[0].content["text"] == "echo: hello"
    assert runner.running


async def test_persistent_messages_go_out_one_turn_at_a_time_in_order(make_runner):
    runner, sink = make_runner("claude_code", "claude-echo", prompt=None)
    await runner.start()
    for text in ("one", "two", "three"):
        await runner.send(text)
    await sink.wait_turns(3, timeout=20)
    assert [e.content["text"] for e in sink.of_type("text")] == ["echo: one", "echo: two", "echo: three"]
    assert runner.provider_session_id == "0000fa4e-0000-4000-8000-000000000001"


async def test_an_app_server_agent_that_exits_at_start_fails_naming_its_error(make_runner):
    runner, sink = make_runner("codex", "codex-exit", prompt="first")
    await runner.start()
    await poll(lambda: sink.exits, timeout=20, what="the exit")
    code, error = sink.exits[0]
    assert code == 2 and "kaput" in (error or "")
    assert not runner.running


async def test_app_server_turns_follow_the_handshake_on_one_process_in_order(make_runner):
    runner, sink = make_runner("codex", "codex-echo", prompt="first")
    await runner.start()
    pid = runner.pid
    await runner.send("second")
    await sink.wait_turns(2, timeout=20)

    first, second = (json.loads(e.content["text"]) for e in sink.of_type("text"))
    assert (first["prompt"], second["prompt"]) == ("first", "second")
    assert first["argv"][0] == "app-server" and runner.pid == pid  # one long-lived process
    assert runner.provider_session_id == "0000fa4e-0000-4000-8000-000000000002"


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_missing_binary_fails_start_naming_the_path_and_runs_nothing(make_runner, tmp_path, provider):
    missing = tmp_path / "bin" / "agent-cli"
    runner, sink = make_runner(provider, "claude-echo", binary=str(missing))
    with pytest.raises(FailedPrecondition) as info:
        await runner.start()
    assert str(missing) in str(info.value)
    assert not runner.running and runner.pid is None and sink.events == [] and sink.exits == []


@pytest.mark.parametrize(("provider", "mode"), [("claude_code", "claude-echo"), ("codex", "codex-echo")])
async def test_messages_sent_before_start_wait_and_follow_the_prompt_in_order(make_runner, provider, mode):
    runner, sink = make_runner(provider, mode, prompt="first")
    await runner.send("second")
    await runner.send("third")
    assert not runner.started and runner.queued == 2 and sink.events == []

    await runner.start()

    await sink.wait_turns(3, timeout=30)
    texts = [e.content.get("text", "") for e in sink.events if e.role == "assistant" and e.content.get("text")]
    # The claude fake echoes the message; the codex fake answers with its argv's prompt as JSON.
    prompts = [t.removeprefix("echo: ") if provider == "claude_code" else json.loads(t)["prompt"] for t in texts]
    assert prompts == ["first", "second", "third"]


async def test_stop_before_start_is_harmless_and_then_send_and_start_are_refused(make_runner):
    runner, sink = make_runner("claude_code", "claude-echo")
    await runner.send("queued")
    assert await runner.stop(grace=1) is None
    with pytest.raises(FailedPrecondition):
        await runner.send("too late")
    with pytest.raises(FailedPrecondition):
        await runner.start()
    assert sink.exits == [] and runner.pid is None


async def test_interrupt_without_a_running_turn_does_nothing(make_runner):
    runner, sink = make_runner("claude_code", "claude-echo", prompt=None)
    await runner.start()
    await runner.interrupt()
    await runner.send("still fine")
    await sink.wait_turns(1, timeout=20)
    assert [e.turn_error for e in sink.events if e.turn_complete] == [None]


async def test_a_failing_event_callback_ends_the_agent_and_reports_why(tmp_path):
    exits: list[tuple[int | None, str | None]] = []

    async def on_event(event) -> None:
        raise RuntimeError("store is down")

    async def on_exit(code: int | None, error: str | None) -> None:
        exits.append((code, error))

    config = ProviderConfig(name="claude_code", binary=str(FAKE_AGENT), env={"FAKE_AGENT_MODE": "claude-echo"})
    runner = AgentRunner(
        adapter_for("claude_code", config),
        TurnSpec(cwd=tmp_path, prompt="hi"),
        on_event=on_event,
        on_exit=on_exit,
        base_env={"PATH": os.environ["PATH"]},
    )
    pid = await runner.start()
    try:
        await poll(lambda: exits, timeout=20, what="the exit callback")
    finally:
        await runner.stop(grace=1)
    ((code, error),) = exits
    assert code == -signal.SIGKILL and "store is down" in error
    assert not runner.running
    await poll(lambda: live_group_members(pid) == [], timeout=10, what="the process group to be gone")


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_missing_working_directory_fails_start_naming_it(tmp_path, provider):
    sink = EventSink()
    gone = tmp_path / "no-such-worktree"
    config = ProviderConfig(name=provider, binary=str(FAKE_AGENT), env={"FAKE_AGENT_MODE": "claude-echo"})
    runner = AgentRunner(
        adapter_for(provider, config), TurnSpec(cwd=gone, prompt="hi"), on_event=sink.on_event, on_exit=sink.on_exit
    )
    with pytest.raises(FailedPrecondition, match=str(gone)):
        await runner.start()
    assert not runner.running and sink.events == [] and sink.exits == []


async def test_stop_returns_even_when_an_escaped_child_holds_the_output_open(make_runner, tmp_path):
    pidfile = tmp_path / "escaped.pid"
    fds_before = set(os.listdir("/proc/self/fd"))
    runner, sink = make_runner("claude_code", "claude-escape", FAKE_AGENT_PIDFILE=str(pidfile))
    await runner.start()
    await sink.wait_turns(1, timeout=20)
    await poll(pidfile.exists, timeout=10, what="the escaped child's pid file")
    escaped = int(pidfile.read_text())
    try:
        code = await runner.stop(grace=0.5)
        assert code is not None and sink.exits == [(code, None)] and not runner.running
        await poll(lambda: set(os.listdir("/proc/self/fd")) <= fds_before, timeout=10, what="no new open fds")
    finally:
        os.kill(escaped, signal.SIGKILL)  # it left our process group on purpose; end it here
