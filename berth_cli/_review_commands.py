"""Commands over a session's work (diff, commit, merge, push) and the service (usage, health, metrics)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.text import Text

from berth_cli._args import _items
from berth_cli._client import Client
from berth_cli._render import Output


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
