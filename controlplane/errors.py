"""Domain errors of the control plane. Services and routers raise these; `controlplane.app` maps them to
HTTP answers in one place (401, 404, 409, 422 naming the field)."""

from __future__ import annotations

__all__ = ["Conflict", "ControlPlaneError", "InvalidField", "NotFound", "Unauthorized"]


class ControlPlaneError(Exception):
    """Base class."""


class NotFound(ControlPlaneError):
    """An id that does not name one of the caller's objects (HTTP 404)."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")
        self.message = str(self)


class Conflict(ControlPlaneError):
    """A request the current state refuses (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(ControlPlaneError):
    """A value that is not acceptable (HTTP 422, shaped like FastAPI's validation errors).

    `loc` is the path of the field: a dotted name (`"session_settings.code.default_provider"`) or a
    list whose ints are array indexes."""

    def __init__(self, loc: str | list[str | int], message: str, *, where: str = "body") -> None:
        super().__init__(message)
        self.message = message
        self.loc: list[str | int] = [where, *(loc.split(".") if isinstance(loc, str) else loc)]


class Unauthorized(ControlPlaneError):
    """A secret that proves nothing: unknown, used or expired (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
