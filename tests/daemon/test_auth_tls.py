"""TCP listener: TLS with a self-signed certificate, bearer token on every call except health."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from daemon.auth import TokenCheck, is_unix_peer
from daemon.server import DaemonServer, StartupError
from tests.support import daemon_proc
from tests.support.daemon_proc import DaemonProcess, inprocess_config, start_daemon
from tests.support.leaks import leaked_fds, open_fds
from tests.support.tls import make_self_signed
from tests.support.waiting import wait_for

# Fixtures from the shared daemon helpers.
unix_socket_dir = daemon_proc.unix_socket_dir

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, bytes]]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = make_self_signed(tmp)
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    proc = start_daemon(
        tmp,
        config={
            "listen": {"tcp": "127.0.0.1:0", "tls_cert": str(cert), "tls_key": str(key), "token_file": str(token_file)}
        },
    )
    try:
        assert proc.tcp_port, proc.log_text()
        yield proc, cert.read_bytes()
    finally:
        assert proc.stop() == 0
        assert not proc.socket_path.exists()


@pytest.fixture
def tls_channel(tls_daemon) -> Iterator[grpc.Channel]:
    proc, cert = tls_daemon
    with grpc.secure_channel(f"localhost:{proc.tcp_port}", grpc.ssl_channel_credentials(root_certificates=cert)) as ch:
        yield ch


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def machine_info_code(channel: grpc.Channel, metadata=None) -> grpc.StatusCode:
    try:
        daemon_pb2_grpc.DaemonServiceStub(channel).GetMachineInfo(
            daemon_pb2.GetMachineInfoRequest(), metadata=metadata, timeout=20
        )
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_tcp_call_without_token_is_unauthenticated(tls_channel):
    assert machine_info_code(tls_channel) == grpc.StatusCode.UNAUTHENTICATED


def test_tcp_call_with_wrong_token_is_unauthenticated(tls_channel):
    assert machine_info_code(tls_channel, bearer("wrong")) == grpc.StatusCode.UNAUTHENTICATED
    assert machine_info_code(tls_channel, bearer(TOKEN + "x")) == grpc.StatusCode.UNAUTHENTICATED
    assert machine_info_code(tls_channel, [("authorization", TOKEN)]) == grpc.StatusCode.UNAUTHENTICATED


def test_tcp_call_with_the_right_token_goes_through(tls_channel):
    # GetMachineInfo itself may still be UNIMPLEMENTED; what matters is that auth let it pass.
    assert machine_info_code(tls_channel, bearer(TOKEN)) != grpc.StatusCode.UNAUTHENTICATED
    assert machine_info_code(tls_channel, [("authorization", f"bearer  {TOKEN} ")]) != grpc.StatusCode.UNAUTHENTICATED


def test_health_over_tcp_needs_no_token(tls_channel):
    reply = health_pb2_grpc.HealthStub(tls_channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_streaming_call_over_tcp_without_token_is_unauthenticated(tls_channel):
    stream = daemon_pb2_grpc.DaemonServiceStub(tls_channel).StreamEvents(daemon_pb2.StreamEventsRequest(), timeout=20)
    with pytest.raises(grpc.RpcError) as err:
        list(stream)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_reflection_over_tcp_needs_the_token(tls_channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(tls_channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with pytest.raises(grpc.RpcError) as err:
        list(stub.ServerReflectionInfo(iter([request]), timeout=20))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    replies = list(stub.ServerReflectionInfo(iter([request]), metadata=bearer(TOKEN), timeout=20))
    assert "berth.daemon.v1.DaemonService" in {s.name for s in replies[0].list_services_response.service}


def test_plaintext_connection_to_the_tcp_port_fails(tls_daemon):
    proc, _ = tls_daemon
    with grpc.insecure_channel(f"127.0.0.1:{proc.tcp_port}") as ch, pytest.raises(grpc.RpcError) as err:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_unix_socket_stays_open_without_token_when_tcp_is_on(tls_daemon):
    proc, _ = tls_daemon
    assert machine_info_code(proc.channel()) != grpc.StatusCode.UNAUTHENTICATED


def test_tcp_rpcs_are_logged_with_peer_tcp(tls_daemon, tls_channel):
    proc, _ = tls_daemon
    machine_info_code(tls_channel, [*bearer(TOKEN), ("x-request-id", "tcp-log-check")])
    record = wait_for(
        lambda: next((r for r in proc.log_records() if r.get("request_id") == "tcp-log-check"), None),
        what="the TCP call's log line",
    )
    assert record["peer"] == "tcp"
    assert TOKEN not in proc.log_text()


def test_token_check_compares_whole_tokens_only():
    check = TokenCheck("abc")
    assert check.matches("abc")
    assert not check.matches("ab")
    assert not check.matches("abcd")
    assert not check.matches("")
    assert not check.matches(None)
    assert check.authorized([("authorization", "Bearer abc")])
    assert check.authorized([("Authorization", b"Bearer abc")])
    assert not check.authorized([("authorization", "Basic abc")])
    assert not check.authorized([])
    with pytest.raises(ValueError, match="listen.token"):
        TokenCheck("")


def test_peer_kind_detection():
    assert is_unix_peer("unix:/tmp/x.sock")
    assert is_unix_peer("unix:")
    assert not is_unix_peer("ipv4:127.0.0.1:5555")
    assert not is_unix_peer("ipv6:[::1]:5555")


async def test_in_process_server_reports_the_tcp_port_it_bound(tmp_path, unix_socket_dir):
    cert, key = make_self_signed(tmp_path)
    config = inprocess_config(
        tmp_path, unix_socket_dir, tcp="127.0.0.1:0", tls_cert=str(cert), tls_key=str(key), token=TOKEN
    )
    async with DaemonServer(config) as server:
        assert server.tcp_port and server.tcp_port > 0
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{server.tcp_port}", creds) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert server.socket_path is None


async def test_tcp_port_already_in_use_is_a_startup_error_naming_listen_tcp(tmp_path, unix_socket_dir):
    cert, key = make_self_signed(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = inprocess_config(
            tmp_path, unix_socket_dir, tcp=f"127.0.0.1:{port}", tls_cert=str(cert), tls_key=str(key), token=TOKEN
        )
        fds = open_fds()
        with pytest.raises(StartupError, match="listen.tcp"):
            await DaemonServer(config).start()
        # The unix socket bound before the TCP port failed is closed, not only unlinked.
        assert leaked_fds(fds, timeout=5) == {}
    assert not (unix_socket_dir / "d.sock").exists()
