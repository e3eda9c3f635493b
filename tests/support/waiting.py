"""Waiting for a condition with a deadline: the one way tests (and bench) wait, never a bare sleep.

`wait_for` polls a plain function; `poll` is its asyncio twin and also awaits a predicate that returns
an awaitable. Both return the first truthy value and raise TimeoutError naming what they waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SESSION_FDS", "SESSION_PROCESSES", "poll", "wait_for"]

# Child processes that session-scoped fixtures start on purpose (the leak check leaves them alone).
SESSION_PROCESSES: set[int] = set()
# File descriptors that session-scoped fixtures keep open on purpose (the leak check leaves them alone).
SESSION_FDS: set[int] = set()


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Call `condition()` until it returns something truthy (returned); TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def poll(
    condition: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Like wait_for, without blocking the event loop; `condition()` may return an awaitable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
