"""The status changes PATCH /api/sessions/{id} allows, as one table (controlplane/statuses.py)."""

from __future__ import annotations

import itertools
from typing import get_args

from controlplane.schemas import SessionUpdate
from controlplane.statuses import STATUSES, Change, SessionStatus, change_for


def test_every_allowed_change_and_the_daemon_call_it_makes():
    allowed = {
        (old, new, launched): change
        for old, new, launched in itertools.product(STATUSES, STATUSES, (False, True))
        if (change := change_for(old, new, launched)) is not None
    }
    assert allowed == {
        ("active", "paused", False): Change.PAUSE,
        ("active", "paused", True): Change.PAUSE,
        ("created", "paused", True): Change.PAUSE,  # launched, its worktree still being written
        ("paused", "active", True): Change.RESUME,
        ("completed", "active", True): Change.RESUME,
        ("failed", "active", True): Change.RESUME,
        ("created", "active", False): Change.LAUNCH,
        **{
            (old, "completed", launched): Change.STOP
            for old in ("created", "active", "paused")
            for launched in (False, True)
        },
    }


def test_the_rest_schemas_use_the_one_vocabulary():
    assert STATUSES == get_args(SessionStatus) == ("created", "active", "paused", "completed", "failed")
    assert SessionUpdate.model_fields["status"].annotation == SessionStatus | None
