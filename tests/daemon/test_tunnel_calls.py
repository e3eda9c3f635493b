"""The tunnel's call framing, both ends in this process: answers and statuses, flow control, cancellation,
deadlines, and the daemon serving each call with its own handlers and interceptors (no second hop).

The servicer here is a test double; the real daemon and the real agents over the tunnel are in
test_tunnel_e2e.py and tests/controlplane/test_dial_out_e2e.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb
from berth.daemon.v1 import daemon_pb2_grpc

from controlplane.tunnel import TunnelConnection, TunnelServer
from daemon.local_calls import LocalCalls
from daemon.tunnel import TunnelDialer, TunnelTarget
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(60)

CREDENTIAL = "credential-of-m-1"
EVENTS = 500


class _Servicer(daemon_pb2_grpc.DaemonServiceServicer):
    """GetSession answers, fails or hangs by id; StreamEvents counts what it produced and when it ended."""

    def __init__(self) -> None:
        self.produced = 0
        self.stream_closed = asyncio.Event()
        self.slow_cancelled = asyncio.Event()
        self.peers: list[str] = []

    async def GetSession(self, request: pb.SessionRequest, context: Any) -> pb.Session:  # noqa: N802
        self.peers.append(context.peer())
        if request.agent_session_id == "as-missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "agent_session_id: no session as-missing")
        if request.agent_session_id == "as-slow":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.slow_cancelled.set()
                raise
        return pb.Session(agent_session_id=request.agent_session_id, status="active")

    async def StreamEvents(self, request: pb.StreamEventsRequest, context: Any) -> AsyncIterator[pb.Event]:  # noqa: N802
        try:
            for seq in range(request.after_seq + 1, EVENTS + 1):
                self.produced += 1
                yield pb.Event(seq=seq)
        finally:
            self.stream_closed.set()


class _Recorder(grpc.aio.ServerInterceptor):
    """An interceptor that notes each method it is asked for."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        self.methods.append(details.method)
        return await continuation(details)


class _Tunnel:
    def __init__(self, servicer: _Servicer, recorder: _Recorder, connection: TunnelConnection) -> None:
        self.servicer, self.recorder, self.connection = servicer, recorder, connection
        self.stub = daemon_pb2_grpc.DaemonServiceStub(connection.channel())  # type: ignore[arg-type]
        self.frames: list[str] = []
        receive = connection.receive

        def noting(frame: Any) -> None:
            self.frames.append(frame.WhichOneof("kind"))
            receive(frame)

        connection.receive = noting  # type: ignore[method-assign]


@pytest.fixture
async def tunnel() -> AsyncIterator[_Tunnel]:
    async def authenticate(credential: str) -> str | None:
        return "m-1" if credential == CREDENTIAL else None

    server = TunnelServer("127.0.0.1:0", authenticate)
    await server.start()
    servicer, recorder = _Servicer(), _Recorder()
    calls = LocalCalls(
        [lambda target: daemon_pb2_grpc.add_DaemonServiceServicer_to_server(servicer, target)], interceptors=[recorder]
    )
    dialer = TunnelDialer(TunnelTarget(f"127.0.0.1:{server.port}", CREDENTIAL, plaintext=True), calls)
    dialer.start()
    try:
        connection = await server.wait_connected("m-1", timeout=30)
        yield _Tunnel(servicer, recorder, connection)
    finally:
        await dialer.close()
        await server.stop()


async def test_a_unary_answer_comes_back_in_one_frame_from_the_daemons_own_handler(tunnel: _Tunnel) -> None:
    session = await tunnel.stub.GetSession(pb.SessionRequest(agent_session_id="as-1"), timeout=10)
    assert session.agent_session_id == "as-1" and session.status == "active"
    assert tunnel.frames == ["answer"]  # the message and the OK status together
    assert tunnel.recorder.methods == ["/berth.daemon.v1.DaemonService/GetSession"]
    assert len(tunnel.servicer.peers) == 1 and tunnel.servicer.peers[0].startswith("tunnel:127.0.0.1:")


async def test_an_abort_arrives_with_its_code_and_details(tunnel: _Tunnel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await tunnel.stub.GetSession(pb.SessionRequest(agent_session_id="as-missing"), timeout=10)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert failed.value.details() == "agent_session_id: no session as-missing"
    assert tunnel.frames == ["status"]


async def test_a_method_the_daemon_does_not_serve_is_unimplemented(tunnel: _Tunnel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await tunnel.stub.ListWorktrees(pb.ListWorktreesRequest(), timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED

    unknown = tunnel.connection.channel().unary_unary("/berth.daemon.v1.DaemonService/NoSuchCall")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await unknown(b"", timeout=10)
    assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_deadline_travels_with_the_call_and_ends_it_on_the_daemon(tunnel: _Tunnel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await tunnel.stub.GetSession(pb.SessionRequest(agent_session_id="as-slow"), timeout=0.3)
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(tunnel.servicer.slow_cancelled.wait(), 10)


async def test_a_slow_reader_holds_back_its_own_stream_and_no_other_call(tunnel: _Tunnel) -> None:
    stream = tunnel.stub.StreamEvents(pb.StreamEventsRequest(agent_session_id="as-1"))
    first = await stream.__aiter__().__anext__()
    assert first.seq == 1
    # The daemon runs ahead of the reader by one window (64) and then waits for credit.
    await poll(lambda: tunnel.servicer.produced >= 64, timeout=10, what="the daemon to fill the window")
    session = await tunnel.stub.GetSession(pb.SessionRequest(agent_session_id="as-2"), timeout=10)
    assert session.agent_session_id == "as-2"
    assert tunnel.servicer.produced <= 65

    rest = [event.seq async for event in stream]
    assert [first.seq, *rest] == list(range(1, EVENTS + 1))
    assert tunnel.servicer.produced == EVENTS


async def test_a_cancelled_stream_ends_on_the_daemon(tunnel: _Tunnel) -> None:
    stream = tunnel.stub.StreamEvents(pb.StreamEventsRequest(agent_session_id="as-1"))
    assert (await stream.__aiter__().__anext__()).seq == 1
    stream.cancel()
    await asyncio.wait_for(tunnel.servicer.stream_closed.wait(), 10)
    assert tunnel.servicer.produced < EVENTS
    # The tunnel serves on.
    assert (await tunnel.stub.GetSession(pb.SessionRequest(agent_session_id="as-3"), timeout=10)).status == "active"
