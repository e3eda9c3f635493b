"""Generated code for the berth.daemon.v1 gRPC contract (see daemon.proto)."""

from berth.daemon.v1 import daemon_pb2, daemon_pb2_grpc

__all__ = ["daemon_pb2", "daemon_pb2_grpc"]
