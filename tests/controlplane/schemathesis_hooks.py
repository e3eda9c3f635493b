"""Schemathesis hooks for test_fuzz_openapi (loaded through SCHEMATHESIS_HOOKS): how to send the
import's Claude Code session file form (application/x-ndjson)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(_ctx: Any, value: Any) -> bytes:
    """A generated string as it is; anything else as one JSON line per item."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode("utf-8", "surrogatepass")
