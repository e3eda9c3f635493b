"""Berth control plane: the REST API web apps call, over a database, driving daemons over gRPC."""

import os

# gRPC's fork handlers can crash a child between fork and exec (see daemon/__init__.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
