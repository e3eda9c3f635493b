"""The daemon process over its unix socket: health, socket permissions, unknown methods, logs, metrics,
startup errors."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import stat
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from daemon.errors import NotFound
from daemon.logs import JsonFormatter, TextFormatter, request_id_var, setup_logging
from daemon.server import DaemonServer
from daemon.supervisor import Supervisor
from tests.support import daemon_proc
from tests.support.daemon_proc import REPO_ROOT, daemon_env, inprocess_config, start_daemon, to_toml
from tests.support.waiting import wait_for

# Fixtures from the shared daemon helpers.
daemon = daemon_proc.daemon
daemon_factory = daemon_proc.daemon_factory
unix_socket_dir = daemon_proc.unix_socket_dir

SERVING = health_pb2.HealthCheckResponse.SERVING


def test_health_is_serving_over_the_unix_socket_for_server_and_daemon_service(daemon):
    stub = health_pb2_grpc.HealthStub(daemon.channel())
    assert stub.Check(health_pb2.HealthCheckRequest(service="")).status == SERVING
    named = stub.Check(health_pb2.HealthCheckRequest(service="berth.daemon.v1.DaemonService"))
    assert named.status == SERVING


def test_health_of_an_unknown_service_is_not_found(daemon):
    stub = health_pb2_grpc.HealthStub(daemon.channel())
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_unix_socket_has_mode_0660(daemon):
    mode = stat.S_IMODE(daemon.socket_path.stat().st_mode)
    assert stat.S_ISSOCK(daemon.socket_path.stat().st_mode)
    assert mode == 0o660


def test_unix_socket_mode_comes_from_config(daemon_factory):
    proc = daemon_factory(config={"listen": {"unix_socket_mode": 0o600}})
    assert stat.S_IMODE(proc.socket_path.stat().st_mode) == 0o600


def test_unknown_method_answers_unimplemented(daemon):
    call = daemon.channel().unary_unary("/berth.daemon.v1.DaemonService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as err:
        call(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    other = daemon.channel().unary_unary("/no.such.Service/Call")
    with pytest.raises(grpc.RpcError) as err:
        other(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unix_socket_callers_need_no_token(daemon):
    stub = daemon_pb2_grpc.DaemonServiceStub(daemon.channel())
    try:
        stub.GetMachineInfo(daemon_pb2.GetMachineInfoRequest(), timeout=20)
    except grpc.RpcError as exc:
        assert exc.code() != grpc.StatusCode.UNAUTHENTICATED


def test_json_logs_have_one_object_per_line_with_rpc_fields(daemon):
    stub = health_pb2_grpc.HealthStub(daemon.channel())
    stub.Check(health_pb2.HealthCheckRequest(), metadata=[("x-request-id", "req-42")])
    record = wait_for(
        lambda: next((r for r in daemon.log_records() if r.get("request_id") == "req-42"), None),
        what="the RPC log line",
    )
    assert record["method"] == "/grpc.health.v1.Health/Check"
    assert record["peer"] == "unix"
    assert record["code"] == "OK"
    assert record["logger"] == "daemon.server"
    assert {"time", "level", "message", "duration_ms"} <= set(record)
    lines = [line for line in daemon.log_text().splitlines() if line.strip()]
    for line in lines:
        json.loads(line)  # every line is a JSON object
    assert any(r.get("message") == "daemon listening" for r in daemon.log_records())


def test_text_log_format_from_the_command_line(daemon_factory):
    proc = daemon_factory(args=["--log-format", "text"])
    text = proc.log_text()
    assert "daemon listening" in text
    assert not text.lstrip().startswith("{")


def test_metrics_endpoint_counts_rpcs_by_method_and_code(daemon_factory):
    proc = daemon_factory(config={"listen": {"metrics": "127.0.0.1:0"}})
    port = int(re.findall(r'"metrics_port": (\d+)', proc.log_text())[-1])
    health_pb2_grpc.HealthStub(proc.channel()).Check(health_pb2.HealthCheckRequest())
    missing = proc.channel().unary_unary("/no.such.Service/Call")
    with pytest.raises(grpc.RpcError):
        missing(b"")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def scrape_with_health_check() -> str | None:
        body = scrape()
        return body if 'berth_daemon_rpc_total{code="OK",method="/grpc.health.v1.Health/Check"}' in body else None

    body = wait_for(scrape_with_health_check, what="the health check in the metrics")
    assert 'berth_daemon_rpc_total{code="UNIMPLEMENTED",method="unknown"} 1.0' in body
    assert "/no.such.Service/Call" not in body  # caller-chosen names never become labels
    assert 'berth_daemon_rpc_errors_total{code="UNIMPLEMENTED"}' in body
    assert "# TYPE berth_daemon_launch_seconds histogram" in body
    assert "# TYPE berth_daemon_events_streamed_total counter" in body
    assert "# TYPE berth_daemon_sessions gauge" in body


def test_stale_socket_file_is_replaced_at_start(tmp_path, daemon_factory):
    sock_dir = Path(tempfile.mkdtemp(prefix="berth-", dir="/tmp"))
    stale = sock_dir / "d.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # bound but nobody listens: a leftover of a crashed daemon
    try:
        proc = daemon_factory(config={"listen": {"unix_socket": str(stale)}})
        assert proc.health_status() == SERVING
    finally:
        stale.unlink(missing_ok=True)
        sock_dir.rmdir()


def test_second_daemon_on_a_live_socket_refuses_to_start_and_leaves_the_first_alone(daemon, tmp_path):
    config = {"listen": {"unix_socket": str(daemon.socket_path)}}
    second = start_daemon(tmp_path, config=config, name="second", wait=False)
    code = second.wait(timeout=60)
    assert code == 1
    assert "another process is listening" in second.log_text()
    assert daemon.socket_path.exists()
    assert daemon.health_status() == SERVING


def test_path_that_is_not_a_socket_is_not_removed(tmp_path):
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    proc = start_daemon(tmp_path, config={"listen": {"unix_socket": str(regular)}}, wait=False)
    assert proc.wait(timeout=60) == 1
    proc.stop()
    assert regular.read_text() == "keep me"
    assert "exists and is not a socket" in proc.log_text()


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"listen": {"tcp": "127.0.0.1:0"}}, "listen.tcp"),
        ({"listen": {"metrics": "nonsense"}}, "listen.metrics"),
        ({"daemon": {"log_format": "xml"}}, "daemon.log_format"),
        ({"daemon": {"max_sessions": 0}}, "daemon.max_sessions"),
    ],
)
def test_bad_config_exits_2_naming_the_field(tmp_path, config, field):
    path = tmp_path / "bad.toml"
    path.write_text(to_toml({"daemon": {"state_dir": str(tmp_path / "s")}, **config}))
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(path)],
        cwd=REPO_ROOT,
        env=daemon_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert field in result.stderr
    assert not (tmp_path / "s" / "daemon.sock").exists()


def test_formatters_render_extra_fields():
    import logging

    record = logging.LogRecord("daemon.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.session_id = "s-1"
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "hello world"
    assert out["level"] == "warning"
    assert out["session_id"] == "s-1"
    assert "session_id=s-1" in TextFormatter().format(record)


# -- in-process ---------------------------------------------------------------------


class RaisingService(daemon_pb2_grpc.DaemonServiceServicer):
    async def GetSession(self, request, context):
        raise NotFound(f"agent_session_id: no session {request.agent_session_id!r}")

    async def ListSessions(self, request, context):
        raise RuntimeError("boom")


async def test_domain_error_escaping_the_service_becomes_its_status_code(tmp_path, unix_socket_dir):
    config = inprocess_config(tmp_path, unix_socket_dir)
    server = DaemonServer(config, servicer=RaisingService())
    async with server, grpc.aio.insecure_channel(f"unix:{config.socket_path}") as channel:
        stub = daemon_pb2_grpc.DaemonServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetSession(daemon_pb2.SessionRequest(agent_session_id="nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "agent_session_id" in err.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListSessions(daemon_pb2.ListSessionsRequest())
        assert err.value.code() == grpc.StatusCode.UNKNOWN


class FailingSupervisor(Supervisor):
    shut_down = False

    async def start(self) -> None:
        raise OSError("state store unreadable")

    async def shutdown(self) -> None:
        self.shut_down = True


async def test_supervisor_start_failure_binds_nothing_and_cleans_up(tmp_path, unix_socket_dir):
    supervisor = FailingSupervisor(inprocess_config(tmp_path, unix_socket_dir))
    server = DaemonServer(supervisor.config, supervisor=supervisor)
    with pytest.raises(OSError, match="state store"):
        await server.start()
    assert supervisor.shut_down
    assert not (unix_socket_dir / "d.sock").exists()
    await server.stop()  # still safe


def test_requests_bigger_than_grpcs_4_mib_default_are_accepted(daemon):
    big = "x" * (8 * 1024 * 1024)
    request = daemon_pb2.ImportTranscriptRequest(
        provider_session_id="",  # invalid on purpose: nothing gets written
        messages=[
            daemon_pb2.TranscriptMessage(
                message_id="m1", role="user", content=daemon_pb2.Content(type="text", text=big)
            )
        ],
    )
    with pytest.raises(grpc.RpcError) as err:
        daemon.stub().ImportTranscript(request, timeout=60)
    assert err.value.code() != grpc.StatusCode.RESOURCE_EXHAUSTED


class CountingSupervisor(Supervisor):
    def sessions_by_status(self) -> dict[str, int]:
        return {"running": 2, "paused": 1}


async def test_sessions_gauge_reads_the_supervisor_at_scrape_time(tmp_path, unix_socket_dir):
    config = inprocess_config(tmp_path, unix_socket_dir, metrics="127.0.0.1:0")
    async with DaemonServer(config, supervisor=CountingSupervisor(config)) as server:
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"

        def scrape() -> str:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read().decode()

        body = await asyncio.to_thread(scrape)
    assert 'berth_daemon_sessions{status="running"} 2.0' in body
    assert 'berth_daemon_sessions{status="paused"} 1.0' in body
    assert server.metrics_port is None  # the endpoint stopped with the server


def test_json_logging_tags_records_with_the_current_request_id():
    import io
    import logging

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        setup_logging("json", "debug", stream=stream)
        token = request_id_var.set("req-7")
        try:
            logging.getLogger("daemon.supervisor").info("launched", extra={"session_id": "s-9"})
        finally:
            request_id_var.reset(token)
        logging.getLogger("daemon.supervisor").info("outside any call")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req-7" and inside["session_id"] == "s-9"
    assert "request_id" not in outside
    with pytest.raises(ValueError, match="log_format"):
        setup_logging("yaml")
