"""The leak check itself: it names a child process a test left running, and passes once it has ended."""

from __future__ import annotations

import subprocess

from tests.support.leaks import child_processes, leaked_children


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
