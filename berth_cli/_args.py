"""Reading the CLI's arguments and the API's answers: JSON arguments, files, item lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from berth_cli._client import CliError


def _json_arg(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise CliError(f"{name}: not valid JSON ({exc})") from exc


def _read_file_arg(path: str | None, name: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"{name}: cannot read {path}: {exc.strerror}") from exc


def _items(data: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for k in (key, "items", "data"):
            if isinstance(data.get(k), list):
                return data[k]
    return []
