"""Graceful shutdown: signals, NOT_SERVING during the drain, in-flight calls finish, followers get UNAVAILABLE."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from daemon.server import DaemonServer, StartupError
from daemon.supervisor import Supervisor
from tests.support import daemon_proc
from tests.support.daemon_proc import inprocess_config
from tests.support.waiting import poll

# Fixtures from the shared daemon helpers.
daemon = daemon_proc.daemon
unix_socket_dir = daemon_proc.unix_socket_dir

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_daemon_with_exit_0_and_removes_the_socket(daemon, signum):
    daemon.signal(signum)
    assert daemon.wait() == 0
    assert not daemon.socket_path.exists()
    messages = [r.get("message") for r in daemon.log_records()]
    assert "daemon shutting down" in messages
    assert messages[-1] == "daemon stopped"


def test_health_watch_sees_not_serving_when_shutdown_starts(daemon):
    watch = health_pb2_grpc.HealthStub(daemon.channel()).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
    seen: list[int] = []
    stream = iter(watch)
    seen.append(next(stream).status)
    assert seen == [SERVING]
    daemon.signal(signal.SIGTERM)
    seen.append(next(stream).status)
    assert seen == [SERVING, NOT_SERVING]
    watch.cancel()
    assert daemon.wait() == 0
    assert not daemon.socket_path.exists()


# -- in-process: the server with a servicer whose calls the test controls ----------------


class GatedService(daemon_pb2_grpc.DaemonServiceServicer):
    """GetMachineInfo waits for `release`; StreamEvents sends one event and then follows forever."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.streaming = asyncio.Event()

    async def GetMachineInfo(self, request, context):
        self.entered.set()
        await self.release.wait()
        return daemon_pb2.MachineInfo(hostname="drained")

    async def StreamEvents(self, request, context):
        yield daemon_pb2.Event(agent_session_id=request.agent_session_id, seq=1)
        self.streaming.set()
        await asyncio.Event().wait()


class RecordingSupervisor(Supervisor):
    def __init__(self, config) -> None:
        super().__init__(config)
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")
        await super().start()

    async def shutdown(self) -> None:
        self.calls.append("shutdown")
        await super().shutdown()


def make_config(tmp_path: Path, socket_dir: Path, **listen):
    return inprocess_config(tmp_path, socket_dir, daemon={"stop_grace_seconds": 30}, **listen)


async def test_in_flight_call_finishes_during_the_drain(tmp_path, unix_socket_dir):
    service = GatedService()
    supervisor = RecordingSupervisor(make_config(tmp_path, unix_socket_dir))
    server = DaemonServer(supervisor.config, supervisor=supervisor, servicer=service)
    await server.start()
    target = f"unix:{server.socket_path}"
    async with grpc.aio.insecure_channel(target) as channel:
        pending = daemon_pb2_grpc.DaemonServiceStub(channel).GetMachineInfo(daemon_pb2.GetMachineInfoRequest())
        await asyncio.wait_for(service.entered.wait(), 30)
        stopping = asyncio.create_task(server.stop())

        async def refuses_new_calls() -> bool:
            try:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.aio.AioRpcError as exc:
                return exc.code() == grpc.StatusCode.UNAVAILABLE
            return False

        await poll(refuses_new_calls, timeout=30, interval=0.02, what="the server refusing new calls")
        assert not stopping.done()
        assert supervisor.calls == ["start"]  # not shut down while a call is in flight
        service.release.set()
        reply = await pending
        assert reply.hostname == "drained"
        await asyncio.wait_for(stopping, 30)
    assert supervisor.calls == ["start", "shutdown"]
    assert not (unix_socket_dir / "d.sock").exists()


async def test_event_followers_end_with_unavailable_at_shutdown(tmp_path, unix_socket_dir):
    service = GatedService()
    config = make_config(tmp_path, unix_socket_dir)
    async with DaemonServer(config, servicer=service) as server:
        channel = grpc.aio.insecure_channel(f"unix:{server.socket_path}")
        call = daemon_pb2_grpc.DaemonServiceStub(channel).StreamEvents(
            daemon_pb2.StreamEventsRequest(agent_session_id="s1")
        )
        first = await call.read()
        assert first.seq == 1
        await asyncio.wait_for(service.streaming.wait(), 30)
        await asyncio.wait_for(server.stop(), 60)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        await channel.close()
    # Grace expiry would have CANCELLED it; UNAVAILABLE tells clients to reconnect and resume.
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in err.value.details()


async def test_stop_is_idempotent_and_safe_to_call_concurrently(tmp_path, unix_socket_dir):
    supervisor = RecordingSupervisor(make_config(tmp_path, unix_socket_dir))
    server = DaemonServer(supervisor.config, supervisor=supervisor)
    await server.stop()  # before start: nothing to do
    await server.start()
    assert server.socket_path is not None and server.socket_path.exists()
    await asyncio.gather(server.stop(), server.stop(grace=0))
    await server.stop()
    await asyncio.wait_for(server.wait(), 5)
    assert supervisor.calls == ["start", "shutdown"]
    assert server.socket_path is None
    assert not (unix_socket_dir / "d.sock").exists()


async def test_failed_start_leaves_no_socket_and_shuts_the_supervisor_down(tmp_path, unix_socket_dir):
    supervisor = RecordingSupervisor(
        make_config(
            tmp_path,
            unix_socket_dir,
            tcp="127.0.0.1:1",
            tls_cert=str(tmp_path / "missing.crt"),
            tls_key=str(tmp_path / "missing.key"),
            token="t",
        )
    )
    server = DaemonServer(supervisor.config, supervisor=supervisor)
    with pytest.raises(StartupError, match="listen.tls_cert"):
        await server.start()
    assert supervisor.calls == ["start", "shutdown"]
    assert not (unix_socket_dir / "d.sock").exists()


async def test_wait_returns_once_the_server_is_stopped(tmp_path, unix_socket_dir):
    async with DaemonServer(make_config(tmp_path, unix_socket_dir)) as server:
        waiter = asyncio.create_task(server.wait())
        await asyncio.sleep(0)  # let the waiter start waiting
        assert not waiter.done()
        await server.stop(grace=0)
        await asyncio.wait_for(waiter, 5)
