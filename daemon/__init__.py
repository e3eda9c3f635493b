"""The Berth daemon: a per-machine gRPC service that runs coding agents in git worktrees."""

import os

# gRPC's fork handlers can crash a child between fork and exec while the server is
# busy (agents and git died with SIGSEGV); the daemon never forks to run Python, so
# turn them off. This must happen before anything imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

__version__ = "0.1.0"
