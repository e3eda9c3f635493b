"""The one error of this package."""

from __future__ import annotations

__all__ = ["SessionFileError"]


class SessionFileError(ValueError):
    """What cannot be read from or written to a session file; `where` names the line or message."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
