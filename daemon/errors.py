"""Domain errors of the daemon, each carrying the gRPC status code it maps to.

Every layer below the gRPC service raises these; the service turns them into
`context.abort(code, message)` in one place.
"""

from __future__ import annotations

import grpc

__all__ = [
    "AlreadyExists",
    "DaemonError",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
]


class DaemonError(Exception):
    """Base class: an error with a gRPC status code and, optionally, the field it concerns."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidArgument(DaemonError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", field=field)


class NotFound(DaemonError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DaemonError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(DaemonError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class AlreadyExists(DaemonError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Internal(DaemonError):
    code = grpc.StatusCode.INTERNAL
