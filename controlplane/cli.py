"""`berth`: the operator CLI over the control plane's REST API.

Tables and colour for people, `--json` for scripts. The URL and token come from `--url`/`--token`,
else `BERTH_URL`/`BERTH_TOKEN`, else `$BERTH_HOME/run.json` (written by `make run`; BERTH_HOME
defaults to ./.berth), else http://127.0.0.1:8080.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from claude_sessions import claude_config_dir, claude_project_dir, looks_like_claude_session_file
from controlplane.statuses import RUNNING

__all__ = [
    "CliError",
    "Client",
    "build_parser",
    "find_run_json",
    "iter_sse",
    "main",
    "resolve_target",
    "run_facts",
    "run_json_candidates",
    "turn_outcome",
]

DEFAULT_URL = "http://127.0.0.1:8080"
STATUS_STYLES = {"created": "cyan", "active": "green", "paused": "yellow", "completed": "blue", "failed": "red"}
ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "magenta", "system": "dim"}


class CliError(Exception):
    """A failure to report to the user (exit status 1), with the API's answer when there is one."""

    def __init__(self, message: str, body: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.body = body
        self.status = status


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
    if path is None:
        return {}
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


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


@dataclass
class Client:
    """A thin synchronous REST client; non-2xx answers raise CliError carrying the body."""

    url: str
    token: str | None
    timeout: float = 120.0
    where: str = ""  # where the URL came from, for errors

    def _from(self) -> str:
        return f" (from {self.where})" if self.where else ""

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The answer to one request (a JSON `body`, or raw `content` of `content_type`); CliError unless 2xx."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        headers = self._headers() | ({"Content-Type": content_type} if content_type else {})
        try:
            with httpx.Client(base_url=self.url, timeout=self.timeout) as http:
                if content is not None:
                    resp = http.request(method, path, content=content, params=params, headers=headers)
                else:
                    resp = http.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the control plane at {self.url}{self._from()}: {exc}") from exc
        if resp.status_code >= 400:
            data = _decoded(resp)
            raise CliError(
                f"{method} {path} → HTTP {resp.status_code}: {_describe_error(data)}", data, resp.status_code
            )
        return resp

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """The decoded JSON answer to one request."""
        return _decoded(self.send(method, path, body=body, params=params, content=content, content_type=content_type))

    def stream_events(self, session_id: str, after_seq: int | None) -> Iterator[dict[str, Any]]:
        """Follow GET /api/sessions/{id}/events (SSE), yielding {id, event, data} records."""
        headers = self._headers() | {"Accept": "text/event-stream"}
        if after_seq is not None:
            headers["Last-Event-ID"] = str(after_seq)
        timeout = httpx.Timeout(self.timeout, read=None)
        try:
            with (
                httpx.Client(base_url=self.url, timeout=timeout) as http,
                http.stream("GET", f"/api/sessions/{session_id}/events", headers=headers) as resp,
            ):
                if resp.status_code >= 400:
                    resp.read()
                    try:
                        data = resp.json()
                    except ValueError:
                        data = resp.text
                    raise CliError(
                        f"GET /api/sessions/{session_id}/events → HTTP {resp.status_code}: {_describe_error(data)}",
                        data,
                        resp.status_code,
                    )
                yield from iter_sse(resp.iter_lines())
        except httpx.HTTPError as exc:
            raise CliError(f"event stream from {self.url}{self._from()} ended: {exc}") from exc


def _decoded(resp: httpx.Response) -> Any:
    try:
        return resp.json() if resp.content else None
    except ValueError:
        return resp.text


def iter_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse Server-Sent Events lines into {id, event, data} (data JSON-decoded when it is JSON)."""
    record: dict[str, Any] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                text = "\n".join(data)
                try:
                    record["data"] = json.loads(text)
                except ValueError:
                    record["data"] = text
                record.setdefault("event", "message")
                yield record
            record, data = {}, []
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field in ("id", "event"):
            record[field] = value


def _describe_error(data: Any) -> str:
    """FastAPI's error bodies as one readable line, naming the field for validation errors."""
    if isinstance(data, dict):
        detail = data.get("detail", data.get("error", data.get("payload", data)))
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        if isinstance(detail, dict):
            return str(detail.get("error") or detail.get("message") or json.dumps(detail))
        return str(detail)
    return str(data)


# --- output -------------------------------------------------------------------------------------


class Output:
    """Prints results as JSON (scripts) or rich tables and colour (people)."""

    def __init__(self, as_json: bool, wide: bool = False) -> None:
        self.as_json = as_json
        self.wide = wide
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        sys.stdout.flush()

    def result(self, data: Any, title: str | None = None) -> None:
        if self.as_json:
            self.json(data)
            return
        if isinstance(data, dict):
            table = Table(show_header=False, title=title, title_justify="left", box=None)
            table.add_column(style="bold")
            table.add_column()
            for key, value in data.items():
                if isinstance(value, (dict, list)):
                    value = json.dumps(value, default=str)
                cell = (
                    Text(str(value), style=STATUS_STYLES.get(str(value), ""))
                    if key in ("status", "session_status")
                    else str(value)
                )
                table.add_row(key, cell)
            self.out.print(table)
        else:
            self.out.print(data)

    def rows(self, items: list[dict[str, Any]], columns: Sequence[str], title: str, raw: Any) -> None:
        """A table that never cuts a value: the columns (most important first) that fit the terminal,
        one space apart; `--wide` shows them all, `--json` everything."""
        if self.as_json:
            self.json(raw)
            return
        cells = [["" if item.get(c) is None else str(item.get(c)) for c in columns] for item in items]
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
        shown = len(columns)
        if not self.wide:
            while shown > 1 and sum(widths[:shown]) + shown - 1 > self.out.width:
                shown -= 1
        # Lines made here rather than by rich's Table, which shrinks columns to the terminal even when
        # told not to; printed with soft_wrap so nothing is wrapped or cropped.
        self.out.print(Text(title, style="italic"), soft_wrap=True)
        header = Text(
            " ".join(c.ljust(w) for c, w in zip(columns[:shown], widths, strict=False)).rstrip(), style="bold"
        )
        self.out.print(header, soft_wrap=True)
        for row in cells:
            line = Text()
            for i, (col, text) in enumerate(zip(columns[:shown], row, strict=False)):
                if i:
                    line.append(" ")
                line.append(
                    text if i == shown - 1 else text.ljust(widths[i]),
                    style=STATUS_STYLES.get(text, "") if col == "status" else "",
                )
            self.out.print(line, soft_wrap=True)
        if shown < len(columns):
            self.err.print(
                f"[dim]left out to fit {self.out.width} columns: {', '.join(columns[shown:])} "
                "(--wide shows them, --json shows everything)[/dim]"
            )
        if not items:
            self.err.print(f"[dim]no {title.lower()}[/dim]")

    def event(self, record: dict[str, Any], session_id: str = "SESSION") -> None:
        if self.as_json:
            self.json(record)
            return
        data = record.get("data")
        if not isinstance(data, dict):
            self.out.print(Text(f"[{record.get('event')}] {data}", style="dim"))
            return
        seq = data.get("seq", record.get("id", ""))
        role = str(data.get("role", record.get("event", "")))
        line = Text(f"{seq:>5} ", style="dim")
        line.append(f"{role:<9} ", style=ROLE_STYLES.get(role, ""))
        content = data.get("content") or {}
        line.append(describe_content(content, data.get("status")))
        self.out.print(line)
        meta = data.get("metadata") or {}
        if content.get("type") == "approval_request" and meta.get("approval_id"):
            sid, aid = session_id, meta["approval_id"]
            self.out.print(
                Text(
                    f"        answer: berth approve {sid} {aid}   or: berth approve {sid} {aid} --deny --message WHY",
                    style="bold yellow",
                )
            )

    def status(self, message: str):
        """A spinner on stderr while a request runs (people only)."""
        if self.as_json or not self.err.is_terminal:
            return _NullContext()
        return self.err.status(message)

    def error(self, exc: CliError) -> None:
        if self.as_json and exc.body is not None:
            self.json({"error": str(exc), "status": exc.status, "body": exc.body})
        self.err.print(Text(f"error: {exc}", style="bold red"))


class _NullContext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def describe_content(content: dict[str, Any], status: str | None = None) -> Text:
    """One line for a message content of the seed shape."""
    kind = content.get("type", "text")
    if status:
        return Text(f"status → {status}", style=STATUS_STYLES.get(status, "bold"))
    if kind == "tool_use":
        args = json.dumps(content.get("arguments") or {}, default=str)
        return Text(f"→ {content.get('name')}({_clip(args)})", style="magenta")
    if kind == "tool_result":
        output = content.get("output")
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        return Text(f"← {_clip(text)}", style="red" if content.get("is_error") else "magenta")
    if kind == "error":
        return Text(content.get("message") or content.get("text") or "error", style="bold red")
    if kind == "approval_request":
        return Text(f"? approval needed: {content.get('message') or content.get('name')}", style="bold yellow")
    if kind == "approval_decision":
        verdict = "allowed" if content.get("success") else "not allowed"
        reason = f" ({content['message']})" if content.get("message") else ""
        return Text(
            f"{'✓' if content.get('success') else '✗'} {content.get('name')} {verdict}{reason}",
            style="green" if content.get("success") else "yellow",
        )
    if kind == "system":
        return Text(content.get("text") or content.get("message") or "", style="dim")
    return Text(content.get("text") or "")


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- commands -----------------------------------------------------------------------------------


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


def cmd_token_create(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("POST", "/api/v1/tokens", body={"owner": a.owner, "is_admin": a.admin, "name": a.name})
    if out.as_json:
        out.json(data)
        return
    out.result({k: v for k, v in data.items() if k != "token"}, title="Token created")
    out.out.print(Text("token (shown once): ", style="bold") + Text(data.get("token", ""), style="bold yellow"))


def cmd_token_list(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("GET", "/api/v1/tokens")
    out.rows(_items(data, "tokens"), ["id", "owner", "is_admin", "name", "created_at"], "Tokens", data)


def cmd_token_revoke(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("DELETE", f"/api/v1/tokens/{a.token_id}")
    out.result(data if data is not None else {"id": a.token_id, "revoked": True}, title="Token revoked")


def cmd_token_bootstrap(client: Client, out: Output, a: argparse.Namespace) -> None:
    """Create an admin token directly in the database (no API call; run where the control plane runs)."""
    argv = [sys.executable, "-m", "controlplane"]
    if a.config:
        argv += ["--config", a.config]
    argv += ["create-token", "--owner", a.owner, "--admin"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise CliError(f"create-token failed: {done.stderr.strip() or done.stdout.strip()}")
    token = done.stdout.strip().splitlines()[-1].strip() if done.stdout.strip() else ""
    if out.as_json:
        out.json({"owner": a.owner, "is_admin": True, "token": token})
    else:
        out.out.print(Text("admin token (shown once): ", style="bold") + Text(token, style="bold yellow"))


def cmd_machine_add(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {
        "name": a.name,
        "address": a.address,
        "tls_ca": _read_file_arg(a.tls_ca, "--tls-ca"),
        "token": (_read_file_arg(a.token_file, "--token-file") or "").strip() or None,
        "owner": a.owner,
    }
    out.result(
        client.request("POST", "/api/v1/machines", body={k: v for k, v in body.items() if v is not None}),
        "Machine added",
    )


def cmd_machine_list(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("GET", "/api/v1/machines")
    out.rows(_items(data, "machines"), ["id", "name", "address", "owner", "has_tls_ca", "has_token"], "Machines", data)


def cmd_machine_show(client: Client, out: Output, a: argparse.Namespace) -> None:
    out.result(client.request("GET", f"/api/v1/machines/{a.machine_id}"), "Machine")


def cmd_machine_info(client: Client, out: Output, a: argparse.Namespace) -> None:
    with out.status(f"Asking the daemon of {a.machine_id}…"):
        data = client.request("GET", f"/api/v1/machines/{a.machine_id}/info")
    out.result(data, "Machine info (from its daemon)")


def cmd_machine_update(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {
        "name": a.name,
        "address": a.address,
        "tls_ca": _read_file_arg(a.tls_ca, "--tls-ca"),
        "token": (_read_file_arg(a.token_file, "--token-file") or "").strip() or None,
    }
    body = {k: v for k, v in body.items() if v is not None}
    out.result(client.request("PATCH", f"/api/v1/machines/{a.machine_id}", body=body), "Machine updated")


def cmd_machine_remove(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("DELETE", f"/api/v1/machines/{a.machine_id}")
    out.result(data if data is not None else {"id": a.machine_id, "removed": True}, "Machine removed")


def cmd_workspace_add(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {
        "name": a.name,
        "repository": a.repository,
        "default_machine_id": a.machine,
        "base_ref": a.base_ref,
        "owner": a.owner,
        "allowed_tools": a.allow,
        "approval_timeout_seconds": a.approval_timeout,
        "max_turns": a.max_turns,
        "max_cost_usd": a.max_cost,
    }
    data = client.request("POST", "/api/v1/workspaces", body={k: v for k, v in body.items() if v is not None})
    out.result(data, "Workspace added")


def cmd_workspace_list(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("GET", "/api/v1/workspaces")
    out.rows(
        _items(data, "workspaces"), ["id", "name", "repository", "default_machine_id", "owner"], "Workspaces", data
    )


def cmd_workspace_show(client: Client, out: Output, a: argparse.Namespace) -> None:
    out.result(client.request("GET", f"/api/v1/workspaces/{a.workspace_id}"), "Workspace")


def cmd_workspace_update(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {
        "name": a.name,
        "repository": a.repository,
        "default_machine_id": a.machine,
        "base_ref": a.base_ref,
        "allowed_tools": a.allow,
        "approval_timeout_seconds": a.approval_timeout,
        "max_turns": a.max_turns,
        "max_cost_usd": a.max_cost,
    }
    body = {k: v for k, v in body.items() if v is not None}
    out.result(client.request("PATCH", f"/api/v1/workspaces/{a.workspace_id}", body=body), "Workspace updated")


def cmd_workspace_remove(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("DELETE", f"/api/v1/workspaces/{a.workspace_id}")
    out.result(data if data is not None else {"id": a.workspace_id, "removed": True}, "Workspace removed")


def cmd_worktrees_list(client: Client, out: Output, a: argparse.Namespace) -> None:
    query = f"?machine_id={quote(a.machine, safe='')}" if a.machine else ""
    data = client.request("GET", f"/api/v1/workspaces/{quote(a.workspace_id, safe='')}/worktrees{query}")
    items = [
        {
            **w,
            "status": "deleted" if w["session_deleted"] else w["session_status"],
            "dirty": "dirty" if w["dirty"] else "",
        }
        for w in data["worktrees"]
    ]
    out.rows(items, ["branch", "status", "dirty", "agent_session_id", "path"], "Worktrees", data)


def cmd_worktrees_prune(client: Client, out: Output, a: argparse.Namespace) -> None:
    body: dict[str, Any] = {"force": a.force}
    if a.machine:
        body["machine_id"] = a.machine
    data = client.request("POST", f"/api/v1/workspaces/{quote(a.workspace_id, safe='')}/worktrees/prune", body=body)
    if out.as_json:
        out.json(data)
        return
    for w in data["removed"]:
        branch = "branch deleted (merged elsewhere)" if w["branch_deleted"] else "branch kept (it has unmerged commits)"
        out.out.print(Text(f"removed {w['path']}  ({w['branch']}: {branch})"), soft_wrap=True)
    for w in data["kept"]:
        out.out.print(Text(f"kept    {w['path']}  ({w['reason']})", style="yellow"), soft_wrap=True)
    if not data["removed"] and not data["kept"]:
        out.err.print("[dim]no worktrees of deleted sessions[/dim]")


def _session_settings(a: argparse.Namespace) -> dict[str, Any] | None:
    if not (
        a.provider
        or a.model
        or a.thinking
        or a.mode
        or a.permissions
        or a.allow
        or a.approval_timeout
        or a.max_turns
        or a.max_cost
    ):
        return None
    provider = a.provider or "claude_code"
    settings: dict[str, Any] = {}
    if a.model:
        settings["model"] = a.model
    if a.thinking:
        if provider != "codex":
            raise CliError("--thinking applies to --provider codex only")
        settings["thinking"] = a.thinking
    code: dict[str, Any] = {"mode": a.mode or "agent", "default_provider": provider}
    if settings:
        code["providers"] = {provider: settings}
    if a.permissions:
        code["permissions"] = a.permissions
    if a.allow:
        code["allowed_tools"] = a.allow
    if a.approval_timeout:
        code["approval_timeout_seconds"] = a.approval_timeout
    if a.max_turns:
        code["max_turns"] = a.max_turns
    if a.max_cost:
        code["max_cost_usd"] = a.max_cost
    return {"code": code}


def cmd_launch(client: Client, out: Output, a: argparse.Namespace) -> int:
    if a.prompt is None and not a.no_prompt:
        a.parser.error("give the agent its first message with -p/--prompt (or --no-prompt to start it without one)")
    a.workspace_id = a.workspace_id or run_facts().get("workspace_id")
    if not a.workspace_id:
        found = find_run_json()
        raise CliError(
            "launch: give a WORKSPACE_ID ("
            + (
                f"{found} has none"
                if found
                else "no run.json found in " + ", ".join(str(p) for p in run_json_candidates())
            )
            + ")"
        )
    body = {
        "machine_id": a.machine,
        "user_session_id": a.user_session,
        "initial_prompt": a.prompt,
        "worktree_name": a.worktree,
        "session_settings": _session_settings(a),
        "resume_session_id": a.resume,
        "agent_session_id": a.agent_session,
        "base_ref": a.base_ref,
        "metadata": _json_arg(a.metadata, "--metadata") if a.metadata else None,
    }
    body = {k: v for k, v in body.items() if v is not None}
    # A relaunched session's earlier turns are not the one to wait for.
    floor = _last_seq(client, a.agent_session) if a.follow and a.agent_session and not a.forever else 0
    with out.status(f"Launching a session in workspace {a.workspace_id}…"):
        data = client.request("POST", f"/api/v1/workspaces/{a.workspace_id}/sessions", body=body)
    if out.as_json:
        out.json(data)
    else:
        payload = dict(data.get("payload") or {})
        out.result(
            {"status": data.get("status"), **payload}, "Launched" if data.get("status") == "ok" else "Launch failed"
        )
    if data.get("status") != "ok":
        raise CliError(f"launch answered status {data.get('status')!r}", None)
    if not a.follow:
        return 0
    session_id = (data.get("payload") or {}).get("agent_session_id")
    if not session_id:
        raise CliError("the launch answer has no agent_session_id to follow", None)
    return _tail(client, out, str(session_id), None, a.max_events, None if a.forever else floor)


PROVIDER_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def _claude_file_for(session_id: str | None) -> Path:
    """A Claude Code session file on this machine: by id in any project, or the latest of this directory's."""
    projects = claude_config_dir() / "projects"
    if session_id:
        if not PROVIDER_ID.fullmatch(session_id):
            raise CliError(f"--from-claude: {session_id!r} is not a Claude Code session id (a UUID)")
        found = sorted(projects.glob(f"*/{session_id}.jsonl"))
        if not found:
            raise CliError(f"--from-claude: no session {session_id} in {projects}/*/")
        return found[0]
    directory = claude_project_dir(Path.cwd())
    files = sorted(directory.glob("*.jsonl"), key=lambda f: f.stat().st_mtime) if directory.is_dir() else []
    if not files:
        raise CliError(f"--from-claude: no Claude Code session of {Path.cwd()} (looked in {directory})")
    return files[-1]


def cmd_import(client: Client, out: Output, a: argparse.Namespace) -> None:
    if a.from_claude is not None:
        if a.args:
            raise CliError("import: with --from-claude, give no SESSION_ID or FILE")
        path, session_id = _claude_file_for(a.from_claude or None), None
    elif len(a.args) == 1:
        path, session_id = Path(a.args[0]), None
    elif len(a.args) == 2:
        path, session_id = Path(a.args[1]), a.args[0]
    else:
        raise CliError("import: give FILE, CLAUDE_SESSION_ID FILE, or --from-claude [ID]")
    text = _read_file_arg(str(path), "FILE") or ""
    stripped = text.lstrip()
    first = stripped.splitlines()[0] if stripped else ""
    head = _json_arg(first, "FILE line 1") if first and not stripped.startswith("[") else None
    if isinstance(head, dict) and looks_like_claude_session_file(head):
        params = {
            "workspace_id": a.workspace_id,
            "claude_session_id": session_id,
            "worktree_name": a.worktree,
            "session_name": a.name,
        }
        with out.status(f"Importing Claude Code session file {path}…"):
            data = client.request(
                "POST",
                "/api/v1/user-sessions/import-claude-session",
                params=params,
                content=text.encode(),
                content_type="application/x-ndjson",
            )
    else:
        if not session_id:
            raise CliError("import: a file of Berth messages needs the CLAUDE_SESSION_ID before it")
        if stripped.startswith("["):
            messages = _json_arg(text, "FILE")
        else:  # JSON lines, one message each
            messages = [
                _json_arg(line, f"FILE line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()
            ]
        body = {"workspace_id": a.workspace_id, "claude_session_id": session_id, "messages": messages}
        if a.worktree:
            body["worktree_name"] = a.worktree
        if a.name:
            body["session_name"] = a.name
        with out.status(f"Importing {len(messages)} messages…"):
            data = client.request("POST", "/api/v1/user-sessions/import-claude-session", body=body)
    out.result(data, "Imported")
    if not data.get("success"):
        raise CliError(f"import failed: {data.get('error')}")


def _write_private(target: Path, content: bytes) -> None:
    """`content` at `target` (0600, its new directories 0700), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    os.replace(tmp, target)


def cmd_export(client: Client, out: Output, a: argparse.Namespace) -> None:
    cwd = os.path.realpath(a.cwd or os.getcwd()) if a.install or a.cwd else None
    resp = client.send("GET", f"/api/sessions/{a.session_id}/export", params={"format": a.format, "cwd": cwd})
    claude_id = resp.headers.get("Berth-Claude-Session-Id", "")
    if a.install:
        assert cwd is not None
        target = claude_project_dir(Path(cwd)) / f"{claude_id}.jsonl"
        if target.exists() and not a.force:
            raise CliError(f"export: {target} exists (Claude Code's own session?); --force replaces it")
        _write_private(target, resp.content)
        out.result(
            {
                "session_id": a.session_id,
                "claude_session_id": claude_id,
                "path": str(target),
                "resume": f"claude --resume {claude_id}",
            },
            f"Installed for {cwd}",
        )
    elif a.output:
        _write_private(Path(a.output), resp.content)
        out.result({"session_id": a.session_id, "claude_session_id": claude_id, "path": a.output}, "Exported")
    else:
        sys.stdout.buffer.write(resp.content)
        sys.stdout.flush()


def cmd_sessions_list(client: Client, out: Output, a: argparse.Namespace) -> None:
    params = {"status": a.status, "task_id": a.task, "agent_id": a.agent, "limit": a.limit, "offset": a.offset}
    data = client.request("GET", "/api/sessions", params=params)
    out.rows(
        _items(data, "sessions"),
        ["id", "agent_id", "status", "task_id", "message_count", "last_active", "workspace_id"],
        "Sessions",
        data,
    )


def cmd_sessions_create(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {
        "agent_id": a.agent_id,
        "task_id": a.task,
        "prompt": a.prompt,
        "workspace_id": a.workspace,
        "machine_id": a.machine,
        "worktree_name": a.worktree,
        "model": a.model,
    }
    with out.status("Creating the session…"):
        data = client.request("POST", "/api/sessions", body={k: v for k, v in body.items() if v is not None})
    out.result(data, "Session created")


def cmd_show(client: Client, out: Output, a: argparse.Namespace) -> None:
    out.result(client.request("GET", f"/api/sessions/{a.session_id}"), "Session")


def cmd_update(client: Client, out: Output, a: argparse.Namespace) -> None:
    body: dict[str, Any] = {}
    if a.status:
        body["status"] = a.status
    if a.data:
        body["data"] = _json_arg(a.data, "--data")
    if a.prompt is not None:
        body["prompt"] = a.prompt
    if not body:
        raise CliError("update: give at least one of --status, --data, --prompt")
    out.result(client.request("PATCH", f"/api/sessions/{a.session_id}", body=body), "Session updated")


def _set_status(status: str, verb: str):
    def run(client: Client, out: Output, a: argparse.Namespace) -> None:
        body = {"status": status}
        if getattr(a, "prompt", None):
            body["prompt"] = a.prompt
        with out.status(f"{verb} {a.session_id}…"):
            data = client.request("PATCH", f"/api/sessions/{a.session_id}", body=body)
        out.result(data, f"Session {status}")

    return run


def cmd_delete(client: Client, out: Output, a: argparse.Namespace) -> None:
    params = {"remove_worktree": "true"} if a.remove_worktree else {}
    if a.force:
        params["force"] = "true"
    data = client.request("DELETE", f"/api/sessions/{a.session_id}", params=params)
    out.result(data if data is not None else {"id": a.session_id, "deleted": True}, "Session deleted")


def cmd_interrupt(client: Client, out: Output, a: argparse.Namespace) -> None:
    out.result(client.request("POST", f"/api/sessions/{a.session_id}/interrupt"), "Turn interrupted")


def cmd_send(client: Client, out: Output, a: argparse.Namespace) -> None:
    text = a.text if a.text != "-" else sys.stdin.read()
    out.result(client.request("POST", f"/api/sessions/{a.session_id}/message", body={"content": text}), "Message sent")


def cmd_messages(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request(
        "GET", f"/api/sessions/{a.session_id}/messages", params={"limit": a.limit, "offset": a.offset}
    )
    if out.as_json:
        out.json(data)
        return
    for message in _items(data, "messages"):
        out.event({"id": message.get("seq"), "event": message.get("role"), "data": message}, a.session_id)


def _newest(client: Client, session_id: str) -> dict[str, Any] | None:
    """The session's newest stored event (None when it has none)."""
    count = int(client.request("GET", f"/api/sessions/{session_id}").get("message_count") or 0)
    if count == 0:
        return None
    page = client.request("GET", f"/api/sessions/{session_id}/messages", params={"offset": count - 1, "limit": 1})
    newest = _items(page, "messages")
    return newest[-1] if newest else None


def _last_seq(client: Client, session_id: str) -> int:
    """The seq of the session's newest stored event (0 when it has none)."""
    newest = _newest(client, session_id)
    return int(newest.get("seq") or 0) if newest is not None else 0


def turn_outcome(record: dict[str, Any], floor: int) -> int | None:
    """The exit status when `record` ends the turn being followed (0: it ended, 1: it or the session failed),
    or None. Events at or below seq `floor` are history and end nothing."""
    data = record.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or data["seq"] <= floor:
        return None
    if data.get("status") == "failed":
        return 1
    if data.get("status") in ("completed", "paused"):
        return 0
    meta = data.get("metadata") or {}
    if meta.get("turn_complete"):
        return 1 if meta.get("turn_error") else 0
    return None


def _tail(
    client: Client, out: Output, session_id: str, after: int | None, max_events: int | None, floor: int | None
) -> int:
    """Print events live until the turn after seq `floor` ends (forever when floor is None); a dropped
    connection is resumed from the last seq seen (like tail -F). Returns the exit status."""
    seen, delay = 0, 0.5
    while True:
        try:
            for record in client.stream_events(session_id, after):
                out.event(record, session_id)
                seen, delay = seen + 1, 0.5
                if str(record.get("id", "")).isdigit():
                    after = int(record["id"])
                if max_events is not None and seen >= max_events:
                    return 0
                outcome = turn_outcome(record, floor) if floor is not None else None
                if outcome is not None:
                    return outcome
            reason = "the server closed the stream"
        except CliError as exc:
            if exc.status is not None:  # an HTTP answer (404, 401 …), not a dropped connection
                raise
            reason = str(exc)
        out.err.print(Text(f"{reason}; reconnecting after seq {after or 0}…", style="dim"))
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def cmd_tail(client: Client, out: Output, a: argparse.Namespace) -> int:
    if a.forever:
        return _tail(client, out, a.session_id, a.after, a.max_events, None)
    session = client.request("GET", f"/api/sessions/{a.session_id}")
    status = session.get("status")
    never_launched = status == "created" and session.get("launched") is False
    if status in RUNNING and not never_launched:
        newest = _newest(client, a.session_id)
        if newest is not None and (newest.get("metadata") or {}).get("turn_complete") and not out.as_json:
            # Read after the status: a turn that ended in between is found here, not waited for.
            out.err.print(
                Text(
                    f"the agent is idle between turns; following until the next one ends "
                    f"(berth send {a.session_id} TEXT starts it; --forever keeps following)",
                    style="dim",
                )
            )
        floor = int(newest.get("seq") or 0) if newest is not None else 0
        return _tail(client, out, a.session_id, a.after, a.max_events, floor)
    # Not running: what it stored, then the outcome.
    after, shown = a.after or 0, 0
    while a.max_events is None or shown < a.max_events:
        page = client.request(
            "GET", f"/api/sessions/{a.session_id}/messages", params={"after_seq": after, "limit": 500}
        )
        messages = _items(page, "messages")
        for message in messages[: None if a.max_events is None else a.max_events - shown]:
            out.event({"id": str(message.get("seq")), "event": "message", "data": message}, a.session_id)
            shown += 1
        if len(messages) < 500:
            break
        after = int(messages[-1].get("seq") or after)
    if not out.as_json:
        why = (
            f"the session was never launched (berth update {a.session_id} --status active launches it)"
            if never_launched
            else f"the session is {status}"
        )
        out.err.print(Text(f"{why}; nothing more will come", style="dim"))
    return 1 if status == "failed" else 0


def _approval_summary(item: dict[str, Any]) -> str:
    data = item.get("input") or {}
    text = data.get("command") or data.get("file_path") or json.dumps(data, default=str)
    return _clip(str(text), 80)


def cmd_approvals(client: Client, out: Output, a: argparse.Namespace) -> None:
    params = {"status": a.status} if a.status else None
    data = client.request("GET", f"/api/sessions/{a.session_id}/approvals", params=params)
    items = [{**item, "asks": _approval_summary(item)} for item in _items(data, "approvals")]
    out.rows(items, ["id", "status", "kind", "tool_name", "asks", "created_at"], "Approvals", data)
    pending = [item["id"] for item in items if item.get("status") == "pending"]
    if pending and not out.as_json:
        out.err.print(
            Text(f"answer with: berth approve {a.session_id} {pending[0]}  (or --deny --message WHY)", style="dim")
        )


def cmd_approve(client: Client, out: Output, a: argparse.Namespace) -> None:
    body: dict[str, Any] = {"decision": "deny" if a.deny else "allow", "remember": a.remember}
    if a.message is not None:
        body["message"] = a.message
    if a.input is not None:
        body["updated_input"] = _json_arg(a.input, "--input")
    data = client.request("POST", f"/api/sessions/{a.session_id}/approvals/{a.approval_id}", body=body)
    out.result(data, "Denied" if a.deny else "Allowed")


def cmd_diff(client: Client, out: Output, a: argparse.Namespace) -> None:
    params: dict[str, Any] = {"stat_only": "true" if a.stat else "false"}
    if a.path:
        params["path"] = a.path
    data = client.request("GET", f"/api/sessions/{a.session_id}/diff", params=params)
    if out.as_json:
        out.json(data)
        return
    lines = [Text(f"{data.get('base_commit', '')[:12]}..worktree of {a.session_id}", style="dim")]
    for f in data.get("files") or []:
        name = f"{f['old_path']} → {f['path']}" if f.get("old_path") else f["path"]
        stat = Text(f" {f['status']:<9} ", style="bold")
        stat.append(name)
        stat.append(f"  +{f['additions']}", style="green")
        stat.append(f" -{f['deletions']}", style="red")
        lines.append(stat)
    patch = data.get("patch") or ""
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in patch.splitlines():
        style = "bold" if line.startswith(("diff --git", "+++", "---", "index ")) else styles.get(line[:1], "")
        lines.append(Text(line, style=style))
    if data.get("truncated"):
        lines.append(Text("… the patch was cut (see --path for one file)", style="yellow"))
    if out.out.is_terminal and len(lines) > out.out.height:
        with out.out.pager(styles=True):  # paged like git (less -R)
            for text in lines:
                out.out.print(text)
    else:
        for text in lines:
            out.out.print(text)


def cmd_commit(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {"message": a.message, **({"author": a.author} if a.author else {})}
    out.result(client.request("POST", f"/api/sessions/{a.session_id}/commit", body=body), "Committed")


def cmd_merge(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {
        "strategy": a.strategy,
        **({"into": a.into} if a.into else {}),
        **({"message": a.message} if a.message else {}),
    }
    out.result(client.request("POST", f"/api/sessions/{a.session_id}/merge", body=body), "Merged")


def cmd_push(client: Client, out: Output, a: argparse.Namespace) -> None:
    body = {"remote": a.remote, **({"branch": a.branch} if a.branch else {})}
    out.result(client.request("POST", f"/api/sessions/{a.session_id}/push", body=body), "Pushed")


def cmd_usage(client: Client, out: Output, a: argparse.Namespace) -> None:
    params = {
        "group_by": a.group_by,
        **({"since": a.since} if a.since else {}),
        **({"until": a.until} if a.until else {}),
    }
    data = client.request("GET", "/api/v1/usage", params=params)
    out.rows(
        _items(data, "groups"),
        ["key", "turns", "sessions", "input_tokens", "output_tokens", "cost_usd"],
        f"Usage by {a.group_by}",
        data,
    )


def cmd_health(client: Client, out: Output, a: argparse.Namespace) -> None:
    out.result(client.request("GET", "/health"), "Control plane")


def cmd_metrics(client: Client, out: Output, a: argparse.Namespace) -> None:
    text = client.request("GET", "/metrics")
    if out.as_json:
        out.json({"metrics": text})
    else:
        sys.stdout.write(text if isinstance(text, str) else json.dumps(text))


# --- parser -------------------------------------------------------------------------------------


def _approval_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--allow",
        action="append",
        metavar="RULE",
        help="a tool rule that runs unasked, e.g. 'Bash(npm test:*)' (repeatable)",
    )
    sp.add_argument(
        "--approval-timeout", type=float, metavar="SECONDS", help="refuse an approval nobody answers within this time"
    )
    sp.add_argument("--max-turns", type=int, metavar="N", help="budget: stop the session after N turns")
    sp.add_argument("--max-cost", type=float, metavar="USD", help="budget: stop the session once it cost this much")


def build_parser() -> argparse.ArgumentParser:
    """The `berth` argument parser (every subcommand sets `func`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="control plane URL (env BERTH_URL)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="bearer token (env BERTH_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output for scripts")
    common.add_argument(
        "--wide",
        action="store_true",
        default=argparse.SUPPRESS,
        help="tables: every column, however wide the lines get",
    )

    p = argparse.ArgumentParser(
        prog="berth",
        parents=[common],
        description="Operate Berth: tokens, machines, workspaces and agent sessions over the REST API.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(parent, name: str, func, help: str, **kw) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=help, parents=[common], **kw)
        sp.set_defaults(func=func, parser=sp)
        return sp

    # tokens
    tok = sub.add_parser("token", help="create, list and revoke API tokens").add_subparsers(dest="sub", required=True)
    sp = add(tok, "create", cmd_token_create, "create a token for an owner (needs an admin token)")
    sp.add_argument("--owner", required=True)
    sp.add_argument("--admin", action="store_true", help="the new token may manage machines and workspaces")
    sp.add_argument("--name", help="a label for the token")
    add(tok, "list", cmd_token_list, "list tokens (admin)")
    sp = add(tok, "revoke", cmd_token_revoke, "revoke a token by id (admin)")
    sp.add_argument("token_id")
    sp = add(tok, "bootstrap", cmd_token_bootstrap, "create the first admin token directly in the database")
    sp.add_argument("--owner", default="admin")
    sp.add_argument("--config", help="the control plane's TOML config")

    # machines
    mach = sub.add_parser("machine", help="register and list daemons (machines)").add_subparsers(
        dest="sub", required=True
    )
    sp = add(mach, "add", cmd_machine_add, "register a daemon")
    sp.add_argument("name")
    sp.add_argument("address", help="unix:/path/to/daemon.sock or host:port (TLS)")
    sp.add_argument("--tls-ca", help="PEM file of the CA that signed the daemon's certificate")
    sp.add_argument("--token-file", help="file holding the daemon's bearer token")
    sp.add_argument("--owner", help="owner of the machine (default: the caller)")
    add(mach, "list", cmd_machine_list, "list machines")
    sp = add(mach, "show", cmd_machine_show, "show one machine")
    sp.add_argument("machine_id")
    sp = add(mach, "info", cmd_machine_info, "ask a machine's daemon for versions and session counts")
    sp.add_argument("machine_id")
    sp = add(mach, "update", cmd_machine_update, "change a machine")
    sp.add_argument("machine_id")
    sp.add_argument("--name")
    sp.add_argument("--address")
    sp.add_argument("--tls-ca")
    sp.add_argument("--token-file")
    sp = add(mach, "remove", cmd_machine_remove, "remove a machine")
    sp.add_argument("machine_id")

    # workspaces
    ws = sub.add_parser("workspace", help="add and list workspaces (repositories)").add_subparsers(
        dest="sub", required=True
    )
    sp = add(ws, "add", cmd_workspace_add, "add a workspace: a repository path or clone URL on a machine")
    sp.add_argument("name")
    sp.add_argument("repository")
    sp.add_argument("--machine", help="default machine id")
    sp.add_argument("--base-ref", help="commit-ish new branches start from")
    sp.add_argument("--owner", help="owner of the workspace (default: the caller)")
    _approval_options(sp)
    add(ws, "list", cmd_workspace_list, "list workspaces")
    sp = add(ws, "show", cmd_workspace_show, "show one workspace")
    sp.add_argument("workspace_id")
    sp = add(ws, "update", cmd_workspace_update, "change a workspace")
    sp.add_argument("workspace_id")
    sp.add_argument("--name")
    sp.add_argument("--repository")
    sp.add_argument("--machine")
    sp.add_argument("--base-ref")
    _approval_options(sp)
    sp = add(ws, "remove", cmd_workspace_remove, "remove a workspace")
    sp.add_argument("workspace_id")

    # worktrees
    wt = sub.add_parser("worktrees", help="list and prune a workspace's worktrees").add_subparsers(
        dest="sub", required=True
    )
    sp = add(wt, "list", cmd_worktrees_list, "your worktrees of a workspace, and whose session was deleted")
    sp.add_argument("workspace_id")
    sp.add_argument("--machine", help="machine id (default: the workspace's default machine)")
    sp = add(
        wt,
        "prune",
        cmd_worktrees_prune,
        "remove the worktrees of deleted sessions (uncommitted work is kept unless --force); a branch goes "
        "too only when its commits are on another branch",
    )
    sp.add_argument("workspace_id")
    sp.add_argument("--machine", help="machine id (default: the workspace's default machine)")
    sp.add_argument("--force", action="store_true", help="remove worktrees with uncommitted work too")

    # sessions
    sp = add(sub, "launch", cmd_launch, "launch an agent session in a workspace")
    sp.add_argument("workspace_id", nargs="?", help="default: the workspace of `make run` (its run.json)")
    first = sp.add_mutually_exclusive_group()
    first.add_argument("--prompt", "-p", help="the first message for the agent")
    first.add_argument("--no-prompt", action="store_true", help="start the agent without a first message")
    sp.add_argument("--provider", choices=["claude_code", "codex"])
    sp.add_argument("--model")
    sp.add_argument("--thinking", choices=["minimal", "low", "medium", "high"], help="codex reasoning effort")
    sp.add_argument("--mode", choices=["agent", "plan"], help="plan: read and plan only, nothing is written")
    sp.add_argument(
        "--permissions",
        choices=["ask", "auto", "deny"],
        help="ask (default): requests wait for `berth approve`; auto: run everything; deny: refuse",
    )
    _approval_options(sp)
    sp.add_argument("--worktree", help="worktree and branch name")
    sp.add_argument("--base-ref")
    sp.add_argument("--machine", help="machine id (default: the workspace's)")
    sp.add_argument("--resume", help="provider session id to resume")
    sp.add_argument("--agent-session", help="existing agent session id (e.g. from an import)")
    sp.add_argument("--user-session", help="existing user session id to reuse")
    sp.add_argument("--metadata", help="JSON object stored with the session")
    sp.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="then print the session's events until its first turn ends (exit 1 if it failed)",
    )
    sp.add_argument("--forever", action="store_true", help="with --follow: keep following after the turn (Ctrl-C)")
    sp.add_argument("--max-events", type=int, help="with --follow: stop after this many events")

    sp = add(
        sub,
        "import",
        cmd_import,
        "import a Claude Code conversation: its own session file (~/.claude/projects/…/ID.jsonl), "
        "or Berth messages (a JSON array or JSON lines) after its session id",
    )
    sp.add_argument("workspace_id")
    sp.add_argument(
        "args",
        nargs="*",
        metavar="[CLAUDE_SESSION_ID] FILE",
        help="a Claude Code session file (its id is read from it), or the id and a file of messages",
    )
    sp.add_argument(
        "--from-claude",
        nargs="?",
        const="",
        metavar="ID",
        help="find the session in this machine's Claude Code projects by ID; "
        "without ID, the latest session of the current directory",
    )
    sp.add_argument("--worktree", help="worktree name for the session (default: one of its own, made at launch)")
    sp.add_argument("--name", help="session name")
    sp = add(sub, "export", cmd_export, "export a session as a Claude Code session file (stdout by default)")
    sp.add_argument("session_id")
    sp.add_argument("--format", choices=["claude-code"], default="claude-code")
    sp.add_argument(
        "--install",
        action="store_true",
        help="write it where Claude Code looks for the current directory's sessions, "
        "so `claude --resume ID` continues it here",
    )
    sp.add_argument("--cwd", help="with --install: the directory to resume from (default: the current one)")
    sp.add_argument("--force", action="store_true", help="with --install: replace an existing session file")
    sp.add_argument("--output", "-o", help="write the file here instead of stdout")

    sess = sub.add_parser("sessions", help="list or create sessions").add_subparsers(dest="sub", required=True)
    sp = add(sess, "list", cmd_sessions_list, "list sessions")
    sp.add_argument("--status", choices=list(STATUS_STYLES))
    sp.add_argument("--task")
    sp.add_argument("--agent", choices=["CLAUDE_CODE", "CODEX"])
    sp.add_argument("--limit", type=int)
    sp.add_argument("--offset", type=int)
    sp = add(sess, "create", cmd_sessions_create, "create a session (POST /api/sessions)")
    sp.add_argument("agent_id", choices=["CLAUDE_CODE", "CODEX"])
    sp.add_argument("--task")
    sp.add_argument("--prompt", "-p")
    sp.add_argument("--workspace")
    sp.add_argument("--machine")
    sp.add_argument("--worktree")
    sp.add_argument("--model")

    sp = add(sub, "show", cmd_show, "show a session")
    sp.add_argument("session_id")
    sp = add(sub, "update", cmd_update, "change a session's status, data or prompt")
    sp.add_argument("session_id")
    sp.add_argument("--status", choices=list(STATUS_STYLES))
    sp.add_argument("--data", help="JSON object merged into the session's data")
    sp.add_argument("--prompt")
    for name, status, verb, help in (
        ("pause", "paused", "Pausing", "pause a session (ends the agent process, keeps the worktree)"),
        ("resume", "active", "Resuming", "resume a paused session"),
        ("stop", "completed", "Stopping", "stop a session's agent"),
    ):
        sp = add(sub, name, _set_status(status, verb), help)
        sp.add_argument("session_id")
        if name == "resume":
            sp.add_argument("--prompt", "-p", help="a message to start the resumed turn with")
    sp = add(sub, "interrupt", cmd_interrupt, "stop the current turn; the session stays")
    sp.add_argument("session_id")
    sp = add(sub, "delete", cmd_delete, "stop and delete a session")
    sp.add_argument("session_id")
    sp.add_argument(
        "--remove-worktree",
        action="store_true",
        help="remove its worktree too (refused with uncommitted changes unless --force)",
    )
    sp.add_argument("--force", action="store_true", help="with --remove-worktree: remove uncommitted work too")
    sp = add(sub, "send", cmd_send, "send a message to a running session ('-' reads stdin)")
    sp.add_argument("session_id")
    sp.add_argument("text")
    sp = add(sub, "messages", cmd_messages, "list a session's stored messages")
    sp.add_argument("session_id")
    sp.add_argument("--limit", type=int)
    sp.add_argument("--offset", type=int)
    sp = add(
        sub,
        "tail",
        cmd_tail,
        "print a session's events, live until its next turn ends (exit 1 if it failed); "
        "a session that is not running prints what it stored",
    )
    sp.add_argument("session_id")
    sp.add_argument("--after", type=int, help="start after this seq (default: from the beginning)")
    sp.add_argument("--max-events", type=int, help="stop after this many events")
    sp.add_argument("--forever", action="store_true", help="keep following after the turn ends (Ctrl-C to stop)")
    sp = add(sub, "approvals", cmd_approvals, "list a session's approvals (the agent's permission requests)")
    sp.add_argument("session_id")
    sp.add_argument("--status", choices=["pending", "allowed", "denied", "cancelled", "expired"])
    sp = add(sub, "approve", cmd_approve, "allow (or --deny) a pending approval; the agent goes on")
    sp.add_argument("session_id")
    sp.add_argument("approval_id")
    sp.add_argument("--deny", action="store_true", help="refuse instead of allowing")
    sp.add_argument("--message", "-m", help="the reason (the agent's model reads it)")
    sp.add_argument("--remember", action="store_true", help="allow this command or tool for the rest of the session")
    sp.add_argument("--input", help="JSON object: the tool input to run instead (a question's answers)")
    sp = add(sub, "diff", cmd_diff, "show a session's changes against the commit it started from (coloured, paged)")
    sp.add_argument("session_id")
    sp.add_argument("--stat", action="store_true", help="files and counts only")
    sp.add_argument("--path", help="one file")
    sp = add(sub, "commit", cmd_commit, "commit everything in a session's worktree on its branch")
    sp.add_argument("session_id")
    sp.add_argument("--message", "-m", required=True)
    sp.add_argument("--author", help='"Name <email>"')
    sp = add(sub, "merge", cmd_merge, "merge a session's branch (default: into the branch it started from)")
    sp.add_argument("session_id")
    sp.add_argument("--into", help="target branch")
    sp.add_argument("--strategy", choices=["merge", "squash", "fast-forward"], default="merge")
    sp.add_argument("--message", "-m", help="the merge or squash commit's message")
    sp = add(sub, "push", cmd_push, "push a session's branch with the machine's git credentials")
    sp.add_argument("session_id")
    sp.add_argument("--remote", default="origin")
    sp.add_argument("--branch", help="remote branch name (default: the session's)")
    sp = add(sub, "usage", cmd_usage, "tokens, cost and turns of your sessions (admins: everyone's)")
    sp.add_argument("--group-by", choices=["workspace", "owner", "day"], default="workspace")
    sp.add_argument("--since", help="ISO time: turns that ended at or after it")
    sp.add_argument("--until", help="ISO time: turns that ended before it")
    add(sub, "health", cmd_health, "check the control plane answers")
    add(sub, "metrics", cmd_metrics, "print the control plane's Prometheus metrics")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `berth` console script."""
    args = build_parser().parse_args(argv)
    out = Output(as_json=getattr(args, "json", False), wide=getattr(args, "wide", False))
    url, token, where = _target(getattr(args, "url", None), getattr(args, "token", None))
    client = Client(url, token, where=where)
    try:
        status = args.func(client, out, args)
    except CliError as exc:
        out.error(exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
