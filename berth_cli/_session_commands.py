"""Commands over sessions: launch, import and export, status changes, messages, tail, approvals.

Size: one function per command over sessions (about twenty), each short; they share the argument
helpers at the top, and splitting them by command would scatter one `berth` verb list over files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from rich.text import Text

from berth_cli._args import _items, _json_arg, _read_file_arg
from berth_cli._client import Client, CliError
from berth_cli._render import Output, _clip
from berth_cli._target import find_run_json, run_facts, run_json_candidates
from claude_sessions import claude_config_dir, claude_project_dir, looks_like_claude_session_file
from controlplane.statuses import RUNNING


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
