"""Commands over tokens, machines, workspaces and their worktrees."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from rich.text import Text

from berth_cli._args import _items, _read_file_arg
from berth_cli._client import Client, CliError
from berth_cli._render import Output
from berth_cli.runfile import BootstrapError, create_admin_token


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
    try:
        token = create_admin_token(a.config, a.owner)
    except BootstrapError as exc:
        raise CliError(str(exc)) from None
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
        "dial_out": True if a.dial_out else None,
    }
    if a.address is None and not a.dial_out:
        raise CliError("machine add: give the daemon's ADDRESS, or --dial-out for a daemon that dials in")
    data = client.request("POST", "/api/v1/machines", body={k: v for k, v in body.items() if v is not None})
    out.result(data, "Machine added")
    if isinstance(data, dict) and data.get("enrollment_token") and not out.as_json:
        _enroll_hint(out, str(data["enrollment_token"]))


def _enroll_hint(out: Output, token: str) -> None:
    out.err.print(
        Text(
            "shown once; on the machine run: berth-daemon enroll --url URL --token " + token + " [--ca FILE]",
            style="dim",
        )
    )


def cmd_machine_list(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("GET", "/api/v1/machines")
    columns = ["id", "name", "address", "owner", "has_tls_ca", "has_token", "online"]
    out.rows(_items(data, "machines"), columns, "Machines", data)


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


def cmd_machine_enrollment(client: Client, out: Output, a: argparse.Namespace) -> None:
    data = client.request("POST", f"/api/v1/machines/{a.machine_id}/enrollment")
    out.result(data, "Enrollment token")
    if isinstance(data, dict) and data.get("enrollment_token") and not out.as_json:
        _enroll_hint(out, str(data["enrollment_token"]))


def cmd_machine_revoke(client: Client, out: Output, a: argparse.Namespace) -> None:
    out.result(client.request("POST", f"/api/v1/machines/{a.machine_id}/revoke"), "Machine revoked")


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
    data = client.request(
        "GET", f"/api/v1/workspaces/{quote(a.workspace_id, safe='')}/worktrees", params={"machine_id": a.machine}
    )
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
