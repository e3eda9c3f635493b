"""Session lifecycle: worktree → agent process → events, with queues and reconcile on start.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from daemon.config import DaemonConfig

__all__ = ["Supervisor"]


class Supervisor:
    """Owns every session of this daemon."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config

    async def start(self) -> None:
        """Open the state store and re-adopt sessions left by an earlier run."""

    async def shutdown(self) -> None:
        """Stop following agents and close the store. Idempotent."""
