"""One live agent for one session: starts the CLI, feeds it messages in order, turns its
output into events and ends its whole process group.

Every agent is one long-lived process per session, fed on stdin (claude's stream-json, codex's
app-server JSON-RPC); the adapter says what to write and how to read what comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from daemon.agents.base import AgentAdapter, AgentEvent, TurnSpec
from daemon.errors import DaemonError, FailedPrecondition

__all__ = ["INTERRUPT_ESCALATE_SECONDS", "STDERR_TAIL_BYTES", "AgentRunner", "Phase", "Turn"]

STDERR_TAIL_BYTES = 8192
# An agent interrupted by SIGINT (its stdin gone) that ignores it this long gets SIGKILL.
INTERRUPT_ESCALATE_SECONDS = 5.0
_log = logging.getLogger(__name__)
# How long stop() waits for a dead agent's output to end.
_READ_DRAIN_SECONDS = 5.0
_LINE_LIMIT = 64 * 1024 * 1024  # claude prints whole tool results (file contents) on one line

OnEvent = Callable[[AgentEvent], Awaitable[None]]
OnExit = Callable[[int | None, str | None], Awaitable[None]]
# Called with a queued message's key once the message has been handed to the agent.
OnWritten = Callable[[int], Awaitable[None]]


class Phase(enum.Enum):
    """A runner's life: NEW → RUNNING → STOPPING → EXITED, or NEW → CANCELLED (stopped before start).
    Nothing goes back: a runner is used once."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"
    CANCELLED = "cancelled"


class Turn(enum.Enum):
    """The current turn: IDLE (the next message may go) or RUNNING (until its end event is delivered)."""

    IDLE = "idle"
    RUNNING = "running"


class _Proc:
    """One child process with its stdout/stderr readers."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr_tail = bytearray()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None

    def signal_group(self, sig: int) -> None:
        # The child leads its own process group (start_new_session), so pgid == pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def stderr_text(self) -> str:
        return bytes(self.stderr_tail).decode("utf-8", "replace").strip()


class AgentRunner:
    """Runs one session's agent; see the module docstring."""

    def __init__(
        self,
        adapter: AgentAdapter,
        spec: TurnSpec,
        *,
        on_event: OnEvent,
        on_exit: OnExit,
        base_env: Mapping[str, str] | None = None,
        on_written: OnWritten | None = None,
    ) -> None:
        self.adapter = adapter
        self.spec = spec
        self._on_event = on_event
        self._on_exit = on_exit
        self._on_written = on_written
        self._base_env = dict(os.environ if base_env is None else base_env)
        # (text, key): the key goes to on_written once the text is with the agent.
        self._queue: deque[tuple[str, int | None]] = deque()
        self._proc: _Proc | None = None
        self._task: asyncio.Task[None] | None = None  # reads the current process
        self._escalation: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._phase = Phase.NEW
        self._turn = Turn.IDLE
        self._last_code: int | None = None
        self._held = False  # hold(): no further message goes to the agent
        self.provider_session_id: str | None = spec.resume_id

    # -- public state ----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.alive() else None

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> bool:
        """True from start() until the agent is gone for good."""
        return self._phase in (Phase.RUNNING, Phase.STOPPING)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> int | None:
        """Start the agent (and its first turn when spec.prompt is set); returns the pid or None.

        Messages sent before start() were queued; they follow the prompt in order.
        """
        if self._phase is not Phase.NEW:
            raise FailedPrecondition(
                "the agent was stopped before it started" if self._phase is Phase.CANCELLED else "agent already started"
            )
        self.adapter.resolve_binary()  # fail here, before anything runs
        if not Path(self.spec.cwd).is_dir():
            raise FailedPrecondition(f"working directory does not exist: {self.spec.cwd}")
        if self.spec.prompt:
            self._queue.appendleft((self.spec.prompt, None))
        try:
            proc = await self._spawn(self.spec)
            await self._write(proc, self.adapter.startup_bytes())
        except BaseException:
            if self.spec.prompt:
                self._queue.popleft()
            raise
        self._phase = Phase.RUNNING
        await self._pump()
        return self.pid

    @property
    def started(self) -> bool:
        """start() has run (the agent may have ended since)."""
        return self._phase in (Phase.RUNNING, Phase.STOPPING, Phase.EXITED)

    @property
    def turn_running(self) -> bool:
        """A turn is under way (until its end event is delivered)."""
        return self._turn is Turn.RUNNING

    def preload(self, text: str, key: int | None = None) -> None:
        """Queue a message before start() (the session's stored pending messages)."""
        if self._phase is not Phase.NEW:
            raise FailedPrecondition("agent already started")
        self._queue.append((text, key))

    async def send(self, text: str, key: int | None = None) -> None:
        """Queue a user message; it goes out once no turn runs (messages keep their order).

        Before start() the message waits for the agent to start. `key` is passed to on_written
        when the message has been handed to the agent.
        """
        if self._phase not in (Phase.NEW, Phase.RUNNING):
            raise FailedPrecondition("the agent is not running")
        self._queue.append((text, key))
        if self._phase is Phase.RUNNING:
            await self._pump()

    def hold(self) -> None:
        """Hand the agent no further message (the session is about to stop, e.g. at its budget)."""
        self._held = True

    async def answer(self, data: bytes) -> None:
        """Write protocol lines (an approval's answer) to the running agent; FailedPrecondition when it
        is gone."""
        proc = self._proc
        if self._phase is not Phase.RUNNING or proc is None or not proc.alive() or proc.process.stdin is None:
            raise FailedPrecondition("the agent is not running")
        try:
            await self._write(proc, data)
        except (ConnectionError, RuntimeError) as exc:
            raise FailedPrecondition(f"the agent is not reading its input: {exc}") from exc

    async def interrupt(self) -> None:
        """End the current turn; the session and its process stay."""
        proc = self._proc
        if not self.turn_running or proc is None or not proc.alive():
            return
        data = self.adapter.interrupt_bytes()
        if data is not None and proc.process.stdin is not None:
            try:
                proc.process.stdin.write(data)
                await proc.process.stdin.drain()
                return
            except (ConnectionError, RuntimeError):
                pass  # stdin gone: fall back to a signal
        proc.signal_group(signal.SIGINT)
        if self._escalation is None or self._escalation.done():
            self._escalation = asyncio.create_task(self._escalate(proc))

    async def stop(self, grace: float) -> int | None:
        """SIGTERM to the whole process group, SIGKILL after `grace`; idempotent.

        Returns the last exit code; on_exit has been awaited when this returns.
        """
        self._queue.clear()
        if self._phase is Phase.NEW:
            self._phase = Phase.CANCELLED
        if self._phase is Phase.CANCELLED:
            return None
        if self._phase is Phase.RUNNING:
            self._phase = Phase.STOPPING
        proc = self._proc
        if proc is not None and proc.alive():
            if proc.process.stdin is not None:
                proc.process.stdin.close()
            proc.signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(proc.process.wait()), timeout=max(grace, 0.0))
            except TimeoutError:
                pass
            # Whatever is left of the group (tool subprocesses included) goes now.
            proc.signal_group(signal.SIGKILL)
            self._last_code = await proc.process.wait()
        task = self._task
        if task is not None and not task.done():
            # The output ends soon after the group is gone, unless something that escaped the
            # group (its own session) still holds the pipe: then stop reading it.
            done, _ = await asyncio.wait({task}, timeout=_READ_DRAIN_SECONDS)
            if not done:
                task.cancel()
                await asyncio.wait({task})
                transport = getattr(proc.process, "_transport", None) if proc is not None else None
                if transport is not None:
                    transport.close()
        if self._escalation is not None:
            self._escalation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._escalation
        await self._finish(None)
        return self._last_code

    async def detach(self) -> None:
        """Stop reading the agent without ending it (daemon shutdown under KillMode=process).

        The process keeps running; on_exit is not called. The next daemon start
        ends what is left of it and resumes the session by its provider id.
        """
        self._phase = Phase.CANCELLED if self._phase is Phase.NEW else Phase.EXITED
        self._queue.clear()
        for task in (self._task, self._escalation):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- internals -------------------------------------------------------------------------------

    async def _spawn(self, spec: TurnSpec) -> _Proc:
        _warn_if_grpc_forks()
        argv = self.adapter.argv(spec)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(spec.cwd),
                env=self.adapter.env(self._base_env),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            raise FailedPrecondition(f"could not start {self.adapter.provider} ({argv[0]}): {exc}") from exc
        proc = _Proc(process)
        self._proc = proc
        if self.provider_session_id is None and self.adapter.assigned_session_id:
            self.provider_session_id = self.adapter.assigned_session_id
        self._task = asyncio.create_task(self._follow(proc), name=f"agent-{process.pid}")
        return proc

    async def _write(self, proc: _Proc, data: bytes) -> None:
        if data and proc.process.stdin is not None:
            proc.process.stdin.write(data)
            await proc.process.stdin.drain()

    async def _pump(self) -> None:
        async with self._lock:
            if self._turn is not Turn.IDLE or not self._queue or self._phase is not Phase.RUNNING:
                return
            if not self.adapter.ready or self._held:
                return  # the handshake's end pumps again; a held runner takes nothing more
            text, key = self._queue.popleft()
            self._turn = Turn.RUNNING
            try:
                proc = self._proc
                if proc is None or not proc.alive() or proc.process.stdin is None:
                    raise FailedPrecondition("the agent process has exited")
                await self._write(proc, self.adapter.encode_message(text))
            except (DaemonError, ConnectionError, RuntimeError):
                self._turn = Turn.IDLE
                self._queue.appendleft((text, key))  # the exit handler reports the dead process
                return
            if key is not None and self._on_written is not None:
                await self._on_written(key)

    async def _follow(self, proc: _Proc) -> None:
        """Read one process to its end: events in order, then exit handling."""
        try:
            await self._follow_inner(proc)
        except Exception as exc:  # noqa: BLE001 - a failing on_event or an absurd line ends the agent
            _log.exception("following %s pid %s failed", self.adapter.provider, proc.pid)
            proc.signal_group(signal.SIGKILL)
            self._last_code = await proc.process.wait()
            self._turn = Turn.IDLE
            await self._finish(f"internal error while following the agent: {type(exc).__name__}: {exc}")

    async def _follow_inner(self, proc: _Proc) -> None:
        code = await self._read(proc)
        self._last_code = code
        error = None
        if self._phase is Phase.RUNNING and self.adapter.failure is not None:
            error = self.adapter.failure
        elif self._phase is Phase.RUNNING and code != 0:
            error = f"{self.adapter.provider} exited with code {code}" + _tail(proc)
        self._turn = Turn.IDLE
        await self._finish(error)

    async def _read(self, proc: _Proc) -> int:
        process = proc.process
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(self._drain_stderr(proc))
        try:
            while line := await process.stdout.readline():
                was_ready = self.adapter.ready
                for event in self.adapter.parse_line(line):
                    await self._deliver(proc, event)
                for reply in self.adapter.take_outgoing():
                    with contextlib.suppress(ConnectionError, RuntimeError):  # a dead agent's exit says why
                        await self._write(proc, reply)
                if self.adapter.failure is not None:
                    proc.signal_group(signal.SIGTERM)  # the session cannot go on; the exit says why
                elif not was_ready and self.adapter.ready:
                    await self._pump()
            await stderr_task
            return await process.wait()
        finally:
            stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stderr_task

    async def _deliver(self, proc: _Proc, event: AgentEvent) -> None:
        if event.provider_session_id:
            self.provider_session_id = event.provider_session_id
        await self._on_event(event)
        if event.turn_complete:
            self._turn = Turn.IDLE
            await self._pump()

    async def _drain_stderr(self, proc: _Proc) -> None:
        assert proc.process.stderr is not None
        while chunk := await proc.process.stderr.read(4096):
            proc.stderr_tail += chunk
            del proc.stderr_tail[:-STDERR_TAIL_BYTES]

    async def _escalate(self, proc: _Proc) -> None:
        await asyncio.sleep(INTERRUPT_ESCALATE_SECONDS)
        if proc.alive():
            proc.signal_group(signal.SIGKILL)

    async def _finish(self, error: str | None) -> None:
        if self._phase in (Phase.EXITED, Phase.CANCELLED):
            return
        self._phase = Phase.EXITED
        self._queue.clear()
        await self._on_exit(self._last_code, error)


_fork_warning_given = False


def _warn_if_grpc_forks() -> None:
    """gRPC's fork handlers crash some forked children (SIGSEGV before exec) while its threads
    are busy; the daemon must set GRPC_ENABLE_FORK_SUPPORT=false before importing grpc."""
    global _fork_warning_given
    if _fork_warning_given or "grpc" not in sys.modules:
        return
    if os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").lower() not in ("0", "false", "no"):
        _fork_warning_given = True
        _log.warning("GRPC_ENABLE_FORK_SUPPORT is not false: agent processes may crash at start")


def _tail(proc: _Proc) -> str:
    text = proc.stderr_text()
    return f": {text[-2000:]}" if text else ""
