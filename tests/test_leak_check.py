"""The leak check itself: it names a child process or a thread a test left running, and passes once it
has ended."""

from __future__ import annotations

import subprocess
import threading

from tests.support.leaks import child_processes, leaked_children, leaked_threads


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
