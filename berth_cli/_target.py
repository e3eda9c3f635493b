"""Where the CLI finds the control plane: --url/--token, BERTH_URL/BERTH_TOKEN, then run.json
(from $BERTH_HOME, .berth/ here or in a parent, the user config dir), else the default URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from berth_cli.runfile import read_run_json

DEFAULT_URL = "http://127.0.0.1:8080"


def run_json_candidates(cwd: Path | None = None) -> list[Path]:
    """Where `make run`'s run.json is looked for, in order: $BERTH_HOME when set (it names the place), then
    .berth/ in the working directory and each parent, then the user config dir ($XDG_CONFIG_HOME/berth)."""
    out: list[Path] = []
    if os.environ.get("BERTH_HOME"):
        out.append(Path(os.environ["BERTH_HOME"]) / "run.json")
    here = (cwd or Path.cwd()).resolve()
    out += [d / ".berth" / "run.json" for d in (here, *here.parents)]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    out.append(config / "berth" / "run.json")
    return out


def find_run_json() -> Path | None:
    """The first run.json of run_json_candidates() that exists, or None."""
    return next((p for p in run_json_candidates() if p.is_file()), None)


def run_facts() -> dict[str, Any]:
    """The facts `make run` wrote to run.json ({} when there is none)."""
    path = find_run_json()
    return {} if path is None else read_run_json(path)


def resolve_target(url: str | None, token: str | None) -> tuple[str, str | None]:
    """The control plane URL and token: flags, then env, then run.json (see run_json_candidates)."""
    url, token, _ = _target(url, token)
    return url, token


def _target(url: str | None, token: str | None) -> tuple[str, str | None, str]:
    """(url, token, where the URL came from)."""
    where = "--url" if url else ""
    url = url or os.environ.get("BERTH_URL")
    where = where or ("BERTH_URL" if url else "")
    token = token or os.environ.get("BERTH_TOKEN")
    if not (url and token):
        path = find_run_json()
        facts = run_facts() if path else {}
        if not url and facts.get("url"):
            where = f"run.json at {path}"
        url = url or facts.get("url")
        token = token or facts.get("admin_token")
    if not url:
        tried = ", ".join(str(p) for p in run_json_candidates())
        where = f"the default (no --url, no BERTH_URL, and no run.json in {tried})"
    return (url or DEFAULT_URL).rstrip("/"), token, where
