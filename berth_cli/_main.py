"""The `berth` command line: its parser and entry point."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from berth_cli._admin_commands import (
    cmd_machine_add,
    cmd_machine_enrollment,
    cmd_machine_info,
    cmd_machine_list,
    cmd_machine_remove,
    cmd_machine_revoke,
    cmd_machine_show,
    cmd_machine_update,
    cmd_token_bootstrap,
    cmd_token_create,
    cmd_token_list,
    cmd_token_revoke,
    cmd_workspace_add,
    cmd_workspace_list,
    cmd_workspace_remove,
    cmd_workspace_show,
    cmd_workspace_update,
    cmd_worktrees_list,
    cmd_worktrees_prune,
)
from berth_cli._client import Client, CliError
from berth_cli._render import STATUS_STYLES, Output
from berth_cli._review_commands import cmd_commit, cmd_diff, cmd_health, cmd_merge, cmd_metrics, cmd_push, cmd_usage
from berth_cli._session_commands import (
    _set_status,
    cmd_approvals,
    cmd_approve,
    cmd_delete,
    cmd_export,
    cmd_import,
    cmd_interrupt,
    cmd_launch,
    cmd_messages,
    cmd_send,
    cmd_sessions_create,
    cmd_sessions_list,
    cmd_show,
    cmd_tail,
    cmd_update,
)
from berth_cli._target import _target


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
    sp = add(mach, "add", cmd_machine_add, "register a daemon (one the control plane dials, or --dial-out)")
    sp.add_argument("name")
    sp.add_argument("address", nargs="?", help="unix:/path/to/daemon.sock or host:port (TLS); none with --dial-out")
    sp.add_argument(
        "--dial-out",
        action="store_true",
        help="the daemon dials the control plane (behind NAT): prints a one-time enrollment token",
    )
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
    sp = add(mach, "enrollment", cmd_machine_enrollment, "a new one-time enrollment token for a dial-out machine")
    sp.add_argument("machine_id")
    sp = add(mach, "revoke", cmd_machine_revoke, "forget a dial-out machine's credential and close its tunnel")
    sp.add_argument("machine_id")
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
    finally:
        client.close()
    return status if isinstance(status, int) else 0
