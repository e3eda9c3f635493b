"""Generated code for the berth.tunnel.v1 gRPC contract (see tunnel.proto)."""

from berth.tunnel.v1 import tunnel_pb2, tunnel_pb2_grpc

__all__ = ["tunnel_pb2", "tunnel_pb2_grpc"]
