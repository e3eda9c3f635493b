"""The gRPC servicer: validates requests, calls the supervisor, maps errors to status codes.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from berth.daemon.v1 import daemon_pb2_grpc
from daemon.supervisor import Supervisor

__all__ = ["DaemonService"]


class DaemonService(daemon_pb2_grpc.DaemonServiceServicer):
    """berth.daemon.v1.DaemonService backed by a Supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
