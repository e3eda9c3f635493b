"""Request bodies parsed strictly: what the database, protobuf or an agent cannot carry is a 422 naming it.

Python's own JSON parser accepts things that fail much later, as 500s and half-written rows: lone
surrogates ("\\ud800": no UTF-8 encoding), NaN / Infinity and numbers past float range, and nesting
deeper than protobuf's Struct can hold. Bodies are parsed here with orjson, which refuses the first
three at once, and the nesting is bounded. When orjson refuses a body that Python's parser takes,
the bad value is looked up so that the error names where it is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

__all__ = ["MAX_BODY_DEPTH", "StrictJSONRoute", "body_problem", "parse_body"]

# Levels of objects/arrays a body may nest (free-form fields end in protobuf Structs at the daemon).
MAX_BODY_DEPTH = 24


def _reject(loc: list[Any], msg: str) -> HTTPException:
    return HTTPException(status_code=422, detail=[{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


def body_problem(value: Any, path: list[Any] | None = None, depth: int = 0) -> tuple[list[Any], str] | None:
    """(where, what) of the first value no part of Berth can carry, or None."""
    path = path or []
    stack: list[tuple[Any, list[Any], int]] = [(value, path, depth)]
    while stack:
        item, where, level = stack.pop()
        if isinstance(item, dict):
            if level >= MAX_BODY_DEPTH:
                return where, f"nested deeper than {MAX_BODY_DEPTH} levels"
            for k, v in item.items():
                if isinstance(k, str) and _bad_text(k):
                    return [*where, k], "keys must be valid UTF-8 text (no lone surrogates)"
                stack.append((v, [*where, k], level + 1))
        elif isinstance(item, list):
            if level >= MAX_BODY_DEPTH:
                return where, f"nested deeper than {MAX_BODY_DEPTH} levels"
            stack.extend((v, [*where, i], level + 1) for i, v in enumerate(item))
        elif isinstance(item, str):
            if _bad_text(item):
                return where, "must be valid UTF-8 text (no lone surrogates)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return where, "must be a finite number (no NaN or Infinity, nothing past float range)"
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            return where, "integers must fit in 64 bits"
    return None


def _bad_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(value: Any, level: int = 0) -> bool:
    """Whether containers nest past MAX_BODY_DEPTH. No paths are built (this runs on every body), and the
    recursion stops at the bound, so it stays shallow."""
    if level >= MAX_BODY_DEPTH:
        return True
    for child in value.values() if type(value) is dict else value:
        if (type(child) is dict or type(child) is list) and _too_deep(child, level + 1):
            return True
    return False


def _depth_problem(value: Any) -> tuple[list[Any], str] | None:
    """Where containers nest past MAX_BODY_DEPTH, or None."""
    if not isinstance(value, dict | list) or not _too_deep(value):
        return None
    return body_problem(value)


def parse_body(raw: bytes) -> Any:
    """The JSON value of `raw`; HTTPException(422) naming the place of anything Berth cannot carry."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            lenient = json.loads(raw)
        except (ValueError, RecursionError):
            raise exc from None  # not JSON at all: FastAPI's own "JSON decode error"
        problem = body_problem(lenient)
        if problem is None:
            raise exc from None
        raise _reject(*problem) from None
    problem = _depth_problem(value)
    if problem is not None:
        raise _reject(*problem)
    return value


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_body(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON bodies go through parse_body()."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_handler
