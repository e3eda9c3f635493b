"""The daemon's session and approval status vocabulary (the names the contract's `status` fields carry)."""

from __future__ import annotations

__all__ = ["APPROVAL_STATUSES", "ENDED_STATUSES", "RUNNING_STATUSES", "SESSION_STATUSES"]

SESSION_STATUSES = ("created", "active", "paused", "completed", "failed")
# The agent runs, or is about to (a launch still writing its worktree).
RUNNING_STATUSES = ("created", "active")
# The agent process is gone until the session is resumed.
ENDED_STATUSES = ("completed", "failed")
APPROVAL_STATUSES = ("pending", "allowed", "denied", "cancelled", "expired")
