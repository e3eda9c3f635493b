"""The session status vocabulary of the control plane, and what each status change asks of a daemon.

One place for the names (the REST schemas, the database, ingest, the CLI and the metrics use these) and
for the changes `PATCH /api/sessions/{id}` allows: any change not in `change_for` is a 409.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args

__all__ = ["ENDED", "NOT_ENDED", "RUNNING", "STATUSES", "Change", "SessionStatus", "change_for"]

SessionStatus = Literal["created", "active", "paused", "completed", "failed"]
STATUSES: tuple[str, ...] = get_args(SessionStatus)
# The agent runs (or is about to): events may come, messages are taken.
RUNNING: tuple[str, ...] = ("created", "active")
# Not over yet: stopping or deleting the session must end its agent first.
NOT_ENDED: tuple[str, ...] = ("created", "active", "paused")
# Over: the agent process is gone until the session is resumed.
ENDED: tuple[str, ...] = ("completed", "failed")


class Change(enum.Enum):
    """What a status change asks of the session's daemon."""

    PAUSE = "pause"
    RESUME = "resume"
    LAUNCH = "launch"
    STOP = "stop"


# (from, to, launched: True/False, or None for either) → the daemon call. A launched session is
# "created" while its daemon still writes the worktree: it pauses too.
_CHANGES: tuple[tuple[tuple[str, ...], str, bool | None, Change], ...] = (
    (("active",), "paused", None, Change.PAUSE),
    (("created",), "paused", True, Change.PAUSE),
    (("paused", "completed", "failed"), "active", True, Change.RESUME),
    (("created",), "active", False, Change.LAUNCH),
    (NOT_ENDED, "completed", None, Change.STOP),
)


def change_for(old: str, new: str, launched: bool) -> Change | None:
    """The daemon call that moves a session from `old` to `new`, or None when that change is not allowed."""
    for olds, to, needs_launched, change in _CHANGES:
        if old in olds and new == to and (needs_launched is None or needs_launched == launched):
            return change
    return None
