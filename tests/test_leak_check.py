"""The leak check itself: it names a child process, a thread, a file descriptor or a temporary file a test
left behind, and passes once it is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading

from tests.support.leaks import (
    child_processes,
    leaked_children,
    leaked_fds,
    leaked_temp_entries,
    leaked_threads,
    open_fds,
    temp_entries,
)


def test_a_child_left_running_is_named_and_one_that_ended_is_not():
    before = child_processes()
    child = subprocess.Popen(["sleep", "60"])
    try:
        left = leaked_children(before, timeout=0.3)
        assert child.pid in left and "sleep 60" in left[child.pid]
    finally:
        child.kill()
        child.wait()
    assert leaked_children(before, timeout=5) == {}


def test_a_thread_left_running_is_named_and_one_that_ended_is_not():
    before = set(threading.enumerate())
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="left-behind")
    worker.start()
    try:
        assert leaked_threads(before, timeout=0.3) == ["left-behind"]
    finally:
        stop.set()
        worker.join()
    assert leaked_threads(before, timeout=5) == []


def test_a_file_descriptor_left_open_is_named_and_one_closed_is_not(tmp_path):
    before = open_fds()
    handle = open(tmp_path / "left-open.txt", "w")  # noqa: SIM115 - left open on purpose
    try:
        left = leaked_fds(before, timeout=0.3)
        assert left == {handle.fileno(): str(tmp_path / "left-open.txt")}
    finally:
        handle.close()
    assert leaked_fds(before, timeout=5) == {}


def test_a_socket_left_open_is_named_with_its_address():
    before = open_fds()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        (described,) = leaked_fds(before, timeout=0.3).values()
        assert described.startswith("socket:[") and " tcp " in described
    finally:
        listener.close()
    assert leaked_fds(before, timeout=5) == {}


def test_a_temporary_file_left_behind_is_named_and_a_removed_one_is_not():
    before = temp_entries()
    fd, name = tempfile.mkstemp(prefix="left-behind-")
    os.close(fd)
    try:
        assert leaked_temp_entries(before) == [os.path.basename(name)]
    finally:
        os.unlink(name)
    assert leaked_temp_entries(before) == []


def test_the_tests_temporary_directory_is_private_to_the_run():
    assert os.path.basename(tempfile.gettempdir()).startswith("berth-tests-")
    assert os.environ["TMPDIR"] == tempfile.gettempdir()
