"""systemd notifications: READY=1 once listening, STOPPING=1 at shutdown, watchdog pings; the sender itself."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from daemon import sdnotify
from tests.support.daemon_proc import start_daemon
from tests.support.waiting import wait_for


class NotifySocket:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self, address: str, bind_to: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.sock.setblocking(False)
        self.received: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.received

    def wait_for(self, needle: str, timeout: float = 60.0) -> str:
        return wait_for(lambda: next((m for m in self.drain() if needle in m), None), timeout=timeout, what=needle)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    directory = Path(tempfile.mkdtemp(prefix="berth-n-", dir="/tmp"))
    path = directory / "notify"
    ns = NotifySocket(str(path), str(path))
    try:
        yield ns
    finally:
        ns.close()
        shutil.rmtree(directory)


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifySocket]:
    name = f"berth-test-{uuid.uuid4().hex}"
    ns = NotifySocket("@" + name, "\0" + name)
    try:
        yield ns
    finally:
        ns.close()


def test_notify_without_notify_socket_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_notify_sends_to_a_path_socket(monkeypatch, notify_socket):
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    assert sdnotify.notify("READY=1\nSTATUS=hello") is True
    assert notify_socket.wait_for("READY=1", timeout=5) == "READY=1\nSTATUS=hello"


def test_notify_sends_to_an_abstract_socket(monkeypatch, abstract_notify_socket):
    monkeypatch.setenv("NOTIFY_SOCKET", abstract_notify_socket.address)
    assert sdnotify.notify("STOPPING=1") is True
    assert abstract_notify_socket.wait_for("STOPPING=1", timeout=5) == "STOPPING=1"


def test_notify_to_a_missing_socket_reports_false(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.notify("READY=1") is False
    assert "sd_notify" in caplog.text


def test_watchdog_interval_reads_usec_for_this_process_only(monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    assert sdnotify.watchdog_interval() == 3.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 3.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "soon")
    assert sdnotify.watchdog_interval() is None


def test_daemon_sends_ready_after_listening_and_stopping_at_shutdown(tmp_path, notify_socket):
    proc = start_daemon(tmp_path, extra_env={"NOTIFY_SOCKET": notify_socket.address}, wait=False)
    try:
        ready = notify_socket.wait_for("READY=1")
        # READY=1 means callers can connect now, not eventually.
        assert proc.socket_path.exists()
        assert proc.health_status() == health_pb2.HealthCheckResponse.SERVING
        assert f"unix:{proc.socket_path}" in ready
        assert any(m.startswith("STATUS=starting") for m in notify_socket.received)
    finally:
        code = proc.stop()
    assert code == 0
    notify_socket.wait_for("STOPPING=1", timeout=5)


def test_daemon_pings_the_watchdog(tmp_path, notify_socket):
    proc = start_daemon(
        tmp_path, extra_env={"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "200000"}, wait=False
    )
    try:
        wait_for(
            lambda: sum(m == "WATCHDOG=1" for m in notify_socket.drain()) >= 2, timeout=60, what="two watchdog pings"
        )
    finally:
        assert proc.stop() == 0
