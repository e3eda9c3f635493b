"""The Berth daemon: a per-machine gRPC service that runs coding agents in git worktrees."""

__version__ = "0.1.0"
