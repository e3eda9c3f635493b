"""Logging setup for the daemon: plain text or one JSON object per line.

Fields passed through `extra=` (session_id, method, code, …) appear in both
formats; the current RPC's request id is added to every record logged while
that RPC is being handled (see `request_id_var`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

__all__ = ["LOG_FORMATS", "JsonFormatter", "TextFormatter", "request_id_var", "setup_logging"]

LOG_FORMATS = ("text", "json")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("berth_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys() | {"message", "asctime", "taskName"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            rid = request_id_var.get()
            if rid is not None:
                record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value …` for humans."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            tail = " ".join(f"{k}={v}" for k, v in extras.items())
            if record.exc_info or record.stack_info:
                head, _, rest = line.partition("\n")
                return f"{head} {tail}\n{rest}"
            line = f"{line} {tail}"
        return line


def setup_logging(fmt: str = "text", level: str | int = "INFO", stream: IO[str] | None = None) -> None:
    """Configure the root logger once for the process (replaces earlier handlers)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log_format: must be one of {list(LOG_FORMATS)}, got {fmt!r}")
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(f"log_level: unknown level {level!r}")  # noqa: TRY004 - a bad value, not a bad type
        level = resolved
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # grpc's own chatter is rarely useful at INFO.
    logging.getLogger("grpc").setLevel(max(level, logging.WARNING))
