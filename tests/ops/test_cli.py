"""The `berth` CLI drives every REST endpoint of a real control plane, over a real daemon and claude."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth_cli import main, sse_records
from claude_sessions import claude_project_dir
from tests.ops.support import child_env, free_port
from tests.support.agents import CLAUDE_BIN, claude_env, claude_provider_config
from tests.support.controlplane_proc import ControlPlaneProcess, start_controlplane_process
from tests.support.daemon_proc import DaemonProcess, start_daemon
from tests.support.git_repos import make_repo
from tests.support.model_server import ModelServer
from tests.support.waiting import wait_for


@dataclass
class Stack:
    """A control plane subprocess, a daemon running the real claude, and the first admin token."""

    cp: ControlPlaneProcess
    daemon: DaemonProcess
    model: ModelServer
    config_path: Path
    repo: Path
    admin_token: str
    calls: list[tuple[str, str]]  # (method, path) of every request the CLI sent

    @property
    def url(self) -> str:
        return self.cp.url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cli")
    model = ModelServer()
    daemon = None
    cp = None
    try:
        claude = claude_provider_config(model.url, tmp / "claude-home")
        daemon = start_daemon(
            tmp / "daemon", config={"providers": {"claude_code": claude}, "listen": {"metrics": "127.0.0.1:0"}}
        )
        port = free_port()
        config_path = tmp / "controlplane.toml"
        config_path.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {port}\nstate_dir = "{tmp / "cp"}"\n'
            "sse_keepalive_seconds = 1\ningest_max_backoff_seconds = 0.5\n"
            '[tunnel]\nlisten = "127.0.0.1:0"\n'
        )
        cp = start_controlplane_process(config_path, port, tmp / "cp.log")
        # The first admin token, the way an operator makes it: `berth token bootstrap`.
        done = subprocess.run(
            [sys.executable, "-m", "berth_cli", "--json", "token", "bootstrap", "--config", str(config_path)],
            check=False,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        token = json.loads(done.stdout)["token"]
        calls: list[tuple[str, str]] = []
        real_send = httpx.Client.send

        def recording_send(self, request, *args, **kwargs):
            calls.append((request.method, request.url.path))
            return real_send(self, request, *args, **kwargs)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(httpx.Client, "send", recording_send)
            yield Stack(cp, daemon, model, config_path, make_repo(tmp / "repo"), token, calls)
    finally:
        if cp is not None:
            cp.stop()
        if daemon is not None:
            daemon.stop()
        model.close()


@pytest.fixture
def berth(stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """berth(*args, token=..., ok=True) → (exit status, stdout, stderr); --json output is parsed."""
    monkeypatch.setenv("BERTH_URL", stack.url)
    monkeypatch.setenv("BERTH_HOME", str(tmp_path / "no-home"))
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: ids are not folded in tables
    monkeypatch.delenv("BERTH_TOKEN", raising=False)

    def run(*args: str, token: str | None = None, ok: bool = True) -> Any:
        capsys.readouterr()
        code = main(["--token", token or stack.admin_token, *args])
        out, err = capsys.readouterr()
        assert (code == 0) == ok, f"berth {' '.join(args)} → {code}\nstdout: {out}\nstderr: {err}"
        if "--json" in args and code == 0:
            lines = [line for line in out.splitlines() if line.strip()]
            return json.loads(lines[0]) if len(lines) == 1 else [json.loads(line) for line in lines]
        return code, out, err

    return run


def branches(repo: Path) -> set[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "branch", "--format=%(refname:short)"], check=True, capture_output=True, text=True
    ).stdout
    return set(out.split())


def _machine(berth, stack: Stack, name: str) -> dict[str, Any]:
    return berth("--json", "machine", "add", name, f"unix:{stack.daemon.socket_path}")


def test_token_bootstrap_create_list_and_revoke(berth, stack):
    created = berth("--json", "token", "create", "--owner", "carol", "--name", "ci")
    assert created["owner"] == "carol" and not created["is_admin"] and created["token"].startswith("berth_")
    listed = berth("--json", "token", "list")
    assert created["id"] in [t["id"] for t in listed]
    assert (
        httpx.get(stack.url + "/api/sessions", headers={"Authorization": f"Bearer {created['token']}"}).status_code
        == 200
    )
    berth("--json", "token", "revoke", created["id"])
    assert created["id"] not in [t["id"] for t in berth("--json", "token", "list")]
    assert (
        httpx.get(stack.url + "/api/sessions", headers={"Authorization": f"Bearer {created['token']}"}).status_code
        == 401
    )


def test_machine_add_list_show_update_remove(berth, stack, tmp_path):
    token_file = tmp_path / "daemon.token"
    token_file.write_text("secret-daemon-token\n")
    m = berth("--json", "machine", "add", "box", "box.example.com:7443", "--token-file", str(token_file))
    assert m["address"] == "box.example.com:7443" and m["has_token"] and "token" not in m
    assert m["id"] in [x["id"] for x in berth("--json", "machine", "list")]
    assert berth("--json", "machine", "show", m["id"])["name"] == "box"
    assert berth("--json", "machine", "update", m["id"], "--name", "box2")["name"] == "box2"
    berth("--json", "machine", "remove", m["id"])
    _code, _, err = berth("machine", "show", m["id"], ok=False)
    assert "HTTP 404" in err


def test_workspace_add_list_show_update_remove(berth, stack):
    m = _machine(berth, stack, "ws-machine")
    ws = berth("--json", "workspace", "add", "proj", str(stack.repo), "--machine", m["id"], "--base-ref", "main")
    assert ws["repository"] == str(stack.repo) and ws["default_machine_id"] == m["id"] and ws["base_ref"] == "main"
    assert ws["id"] in [w["id"] for w in berth("--json", "workspace", "list")]
    assert berth("--json", "workspace", "show", ws["id"])["name"] == "proj"
    assert berth("--json", "workspace", "update", ws["id"], "--name", "proj2")["name"] == "proj2"
    berth("--json", "workspace", "remove", ws["id"])
    assert ws["id"] not in [w["id"] for w in berth("--json", "workspace", "list")]


def test_bad_input_exits_1_with_the_field_named(berth, stack):
    code, _, err = berth("machine", "add", "bad", "not an address", ok=False)
    assert code == 1 and "HTTP 422" in err and "address" in err
    code, out, _ = berth("--json", "machine", "add", "bad", "not an address", ok=False)
    body = json.loads(out)["body"]
    assert body["detail"][0]["loc"][-1] == "address"


def test_machine_add_dial_out_prints_its_enrollment_token_once_and_enrollment_and_revoke_work(berth, stack):
    m = berth("--json", "machine", "add", "laptop", "--dial-out")
    assert m["dial_out"] is True and m["enrolled"] is False and m["online"] is False
    assert m["enrollment_token"].startswith("enroll-") and m["address"] == "tunnel"
    shown = berth("--json", "machine", "show", m["id"])
    assert "enrollment_token" not in shown and shown["online"] is False
    _, _, err = berth("machine", "add", "laptop2", "--dial-out")
    assert "berth-daemon enroll --url URL --token enroll-" in err
    again = berth("--json", "machine", "enrollment", m["id"])
    assert again["machine_id"] == m["id"] and again["enrollment_token"] not in ("", m["enrollment_token"])
    assert again["expires_at"]
    revoked = berth("--json", "machine", "revoke", m["id"])
    assert revoked["enrolled"] is False and revoked["online"] is False
    code, _, err = berth("machine", "add", "nowhere", ok=False)
    assert code != 0 and "--dial-out" in err
    plain = _machine(berth, stack, "plain-machine")
    code, _, err = berth("machine", "revoke", plain["id"], ok=False)
    assert code != 0 and "does not dial out" in err
    for machine in (m, plain):
        berth("--json", "machine", "remove", machine["id"])
    for machine in berth("--json", "machine", "list"):
        if machine["name"] == "laptop2":
            berth("--json", "machine", "remove", machine["id"])


def test_owner_tokens_cannot_manage_machines(berth, stack):
    owner = berth("--json", "token", "create", "--owner", "dave")
    _code, _, err = berth("machine", "add", "x", "unix:/tmp/x.sock", token=owner["token"], ok=False)
    assert "HTTP 403" in err


def test_people_get_tables_and_scripts_get_json(berth, stack):
    m = _machine(berth, stack, "table-machine")
    _, out, _ = berth("machine", "list")
    assert "Machines" in out and m["id"] in out and "table-machine" in out
    assert isinstance(berth("--json", "machine", "list"), (list, dict))


def test_tables_fit_80_columns_without_cutting_an_id_or_a_path(berth, stack, monkeypatch, tmp_path):
    deep = tmp_path / "a-rather-long-directory-name" / "and-another-one-below-it" / "repository"
    deep.mkdir(parents=True)
    m = _machine(berth, stack, "narrow-machine")
    ws = berth("--json", "workspace", "add", "narrow", str(deep), "--machine", m["id"])
    monkeypatch.setenv("COLUMNS", "80")
    _, out, err = berth("workspace", "list")
    lines = out.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), out
    assert any(ws["id"] in line for line in lines)  # the id whole, on one line
    assert "left out to fit 80 columns" in err and "--wide" in err

    # --wide: every column, each row on one line however long, no value cut.
    _, out, err = berth("--wide", "workspace", "list")
    row = next(line for line in out.splitlines() if ws["id"] in line)
    assert str(deep) in row and m["id"] in row and len(row) > 80, out
    assert "left out" not in err


def test_event_lines_keep_a_space_after_the_role(capsys, monkeypatch):
    from berth_cli import Output

    monkeypatch.setenv("COLUMNS", "80")
    Output(as_json=False).event(
        {"id": "5", "data": {"seq": 5, "role": "assistant", "content": {"type": "text", "text": "reply 2"}}}
    )
    assert "assistant reply 2" in capsys.readouterr().out


def test_url_and_token_come_from_berth_home_run_json(stack, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "run.json").write_text(json.dumps({"url": stack.url, "admin_token": stack.admin_token}))
    monkeypatch.setenv("BERTH_HOME", str(home))
    monkeypatch.delenv("BERTH_URL", raising=False)
    monkeypatch.delenv("BERTH_TOKEN", raising=False)
    assert main(["--json", "token", "list"]) == 0
    assert any(t["is_admin"] for t in json.loads(capsys.readouterr().out))
    monkeypatch.setenv("BERTH_TOKEN", "berth_wrong")  # the environment wins over run.json
    assert main(["--json", "token", "list"]) == 1
    assert "HTTP 401" in capsys.readouterr().err


def test_run_json_is_found_walking_up_then_in_the_config_dir_and_errors_say_where(stack, tmp_path, monkeypatch, capsys):
    for name in ("BERTH_HOME", "BERTH_URL", "BERTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    deeper = tmp_path / "proj" / "src" / "deeper"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    assert main(["sessions", "list"]) == 1
    err = capsys.readouterr().err
    assert "the default" in err and str(deeper / ".berth" / "run.json") in err
    assert str(tmp_path / "config" / "berth" / "run.json") in err

    dead = f"http://127.0.0.1:{free_port()}"
    project = tmp_path / "proj" / ".berth" / "run.json"
    project.parent.mkdir()
    project.write_text(json.dumps({"url": dead, "admin_token": "berth_x"}))
    assert main(["sessions", "list"]) == 1
    assert f"at {dead} (from run.json at {project})" in capsys.readouterr().err

    project.unlink()
    mine = tmp_path / "config" / "berth" / "run.json"
    mine.parent.mkdir(parents=True)
    mine.write_text(json.dumps({"url": stack.url, "admin_token": stack.admin_token}))
    assert main(["--json", "token", "list"]) == 0
    assert any(t["is_admin"] for t in json.loads(capsys.readouterr().out))


def test_console_script_runs_with_env_settings(stack):
    env = child_env(BERTH_URL=stack.url, BERTH_TOKEN=stack.admin_token, BERTH_HOME="/nonexistent")
    done = subprocess.run(
        [sys.executable, "-m", "berth_cli", "--json", "health"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": "ok"}


def test_session_lifecycle_launch_tail_send_pause_resume_stop_delete(berth, stack):
    m = _machine(berth, stack, "life-machine")
    ws = berth("--json", "workspace", "add", "life", str(stack.repo), "--machine", m["id"])
    info = berth("--json", "machine", "info", m["id"])
    assert info["hostname"]

    ack = berth(
        "--json",
        "launch",
        ws["id"],
        "-p",
        "Say hello",
        "--provider",
        "claude_code",
        "--worktree",
        "cli-life",
        "--metadata",
        '{"ticket": "T-1"}',
    )
    assert ack["status"] == "ok", ack
    sid = ack["payload"]["agent_session_id"]
    assert Path(ack["payload"]["worktree_path"]).is_dir()

    # tail: the stored events, then live ones; --max-events ends it.
    def answered(text: str):
        def check():
            msgs = berth("--json", "messages", sid)["messages"]
            return any(x["role"] == "assistant" and text in (x["content"].get("text") or "") for x in msgs)

        return check

    wait_for(answered("ok: Say hello"), timeout=90, interval=0.1, what="the first answer")

    def turn_over() -> bool:  # its result stored: the next message goes straight to the agent ("sent")
        return any(x["metadata"].get("turn_complete") for x in berth("--json", "messages", sid)["messages"])

    wait_for(turn_over, timeout=90, interval=0.1, what="the first turn to end")
    total = berth("--json", "messages", sid)["total"]
    events = berth("--json", "tail", sid, "--max-events", str(total))
    events = events if isinstance(events, list) else [events]
    assert [int(e["id"]) for e in events] == [x["seq"] for x in berth("--json", "messages", sid)["messages"]][:total]
    _, out, _ = berth("tail", sid, "--max-events", str(total))
    assert "assistant" in out and "ok: Say hello" in out

    # A live tail from the current end: it sees what the follow-up produces, as it happens.
    env = child_env(BERTH_URL=stack.url, BERTH_TOKEN=stack.admin_token, BERTH_HOME="/nonexistent")
    live = subprocess.Popen(
        [sys.executable, "-m", "berth_cli", "--json", "tail", sid, "--after", str(total), "--max-events", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        sent = berth("--json", "send", sid, "Now say goodbye")
        assert sent["status"] == "sent" and sent["message_id"]
        wait_for(answered("ok: Now say goodbye"), timeout=90, interval=0.1, what="the follow-up's answer")
        out, err = live.communicate(timeout=90)
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    assert live.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    seqs = [int(r["id"]) for r in records]
    assert len(records) == 3 and seqs == sorted(seqs) and seqs[0] == total + 1, records
    assert all(r["data"]["seq"] == int(r["id"]) and r["data"]["role"] for r in records)

    assert berth("--json", "sessions", "list", "--status", "active")["sessions"][0]["id"] == sid
    assert berth("--json", "interrupt", sid)["status"] == "active"
    assert berth("--json", "pause", sid)["status"] == "paused"
    _, _, err = berth("send", sid, "are you there?", ok=False)
    assert "HTTP 409" in err
    assert berth("--json", "resume", sid)["status"] == "active"
    assert berth("--json", "update", sid, "--data", '{"notes": "reviewed"}')["data"]["notes"] == "reviewed"
    shown = berth("--json", "show", sid)
    assert shown["id"] == sid and shown["message_count"] >= 4
    assert berth("--json", "stop", sid)["status"] == "completed"
    berth("--json", "delete", sid)
    _code, _, err = berth("show", sid, ok=False)
    assert "HTTP 404" in err


def test_launch_without_a_prompt_prints_usage_and_starts_nothing(berth, stack, capsys):
    m = _machine(berth, stack, "usage-machine")
    ws = berth("--json", "workspace", "add", "usage", str(stack.repo), "--machine", m["id"])
    before = berth("--json", "sessions", "list")["total"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["--token", stack.admin_token, "launch", ws["id"], "--worktree", "cli-no-prompt"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: berth launch" in err and "-p/--prompt" in err and "--no-prompt" in err
    assert berth("--json", "sessions", "list")["total"] == before
    with pytest.raises(SystemExit):
        main(["--token", stack.admin_token, "launch", ws["id"], "-p", "hi", "--no-prompt"])


def _berth_process(stack: Stack, *args: str) -> subprocess.Popen:
    env = child_env(BERTH_URL=stack.url, BERTH_TOKEN=stack.admin_token, BERTH_HOME="/nonexistent")
    return subprocess.Popen(
        [sys.executable, "-m", "berth_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    """Wait for `proc` and return (code, stdout, stderr) not yet read.

    Read through the pipes' own text wrappers, not communicate(): after a readline() those wrappers
    may already hold later lines, which communicate()'s raw reads of the fds would never see."""
    assert proc.stdout is not None and proc.stderr is not None
    with ThreadPoolExecutor(2) as pool:
        out, err = pool.submit(proc.stdout.read), pool.submit(proc.stderr.read)
        try:
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            return proc.returncode, out.result(), err.result()
        finally:
            proc.stdout.close()
            proc.stderr.close()


def test_launch_follow_and_tail_end_with_the_turn_and_exit_by_its_outcome(berth, stack):
    m = _machine(berth, stack, "follow-machine")
    ws = berth("--json", "workspace", "add", "follow", str(stack.repo), "--machine", m["id"])
    # launch --follow: no --max-events, yet it ends when the first turn does.
    code, out, err = _finish(
        _berth_process(stack, "--json", "launch", ws["id"], "-p", "Say hello", "--follow", "--worktree", "cli-follow")
    )
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    sid = records[0]["payload"]["agent_session_id"]
    assert records[-1]["data"]["metadata"].get("turn_complete") is True
    assert any("ok: Say hello" in (r["data"]["content"].get("text") or "") for r in records[1:])

    # tail of a running, idle session: it waits for the next turn and ends with it.
    tail = _berth_process(stack, "--json", "tail", sid)
    assert tail.stdout is not None
    first = tail.stdout.readline()  # the stored history arrives once its stream is open
    assert first, tail.stderr.read() if tail.stderr else ""
    sent = berth("--json", "send", sid, "Now say goodbye")
    assert sent["message_id"]
    code, out, err = _finish(tail)
    assert code == 0, err
    tailed = [json.loads(line) for line in (first + out).splitlines() if line.strip()]
    assert any("ok: Now say goodbye" in (r["data"]["content"].get("text") or "") for r in tailed)
    assert tailed[-1]["data"]["metadata"].get("turn_complete") is True
    # Only one turn end was printed as the end: the first turn's, from history, did not stop it.
    assert sum(1 for r in tailed if r["data"]["metadata"].get("turn_complete")) == 2

    # For people, tail of an idle agent says it waits for the next turn (and how to start one).
    people = _berth_process(stack, "tail", sid)
    assert people.stderr is not None
    note = people.stderr.readline()
    assert "idle between turns" in note and f"berth send {sid}" in note, note
    berth("--json", "send", sid, "Once more")
    code, out, err = _finish(people)
    assert code == 0 and "ok: Once more" in out, err

    # A stopped session: tail prints what it stored and ends at once.
    berth("--json", "stop", sid)
    code, out, err = _finish(_berth_process(stack, "tail", sid), timeout=60)
    assert code == 0 and "ok: Once more" in out and "the session is completed" in err, err
    berth("--json", "delete", sid)


def test_turn_outcome_ends_on_turn_end_or_terminal_status_after_the_floor():
    from berth_cli import turn_outcome

    def rec(seq: int, status: str | None = None, **meta: Any) -> dict[str, Any]:
        return {"id": str(seq), "data": {"seq": seq, "status": status, "metadata": meta}}

    assert turn_outcome(rec(5, turn_complete=True), floor=7) is None  # history
    assert turn_outcome(rec(8), floor=7) is None
    assert turn_outcome(rec(8, turn_complete=True), floor=7) == 0
    assert turn_outcome(rec(8, turn_complete=True, turn_error="model overloaded"), floor=7) == 1
    assert turn_outcome(rec(9, "failed"), floor=7) == 1
    assert turn_outcome(rec(9, "completed"), floor=7) == 0
    assert turn_outcome(rec(9, "active"), floor=7) is None


def test_approvals_are_listed_answered_and_shown_in_the_tail(berth, stack):
    command = 'python3 -c \'open("cli.txt", "w").write("yes")\''
    stack.model.script("cli check", command=command, text="cli check done")
    m = _machine(berth, stack, "approvals-machine")
    ws = berth(
        "--json", "workspace", "add", "approvals", str(stack.repo), "--machine", m["id"], "--approval-timeout", "600"
    )
    assert ws["approval_timeout_seconds"] == 600 and ws["allowed_tools"] == []
    ack = berth(
        "--json",
        "launch",
        ws["id"],
        "-p",
        "please do the cli check",
        "--permissions",
        "ask",
        "--worktree",
        "cli-approvals",
    )
    sid, worktree = ack["payload"]["agent_session_id"], Path(ack["payload"]["worktree_path"])

    pending = wait_for(
        lambda: berth("--json", "approvals", sid, "--status", "pending")["approvals"],
        timeout=90,
        interval=0.2,
        what="a pending approval",
    )[0]
    _, table, hint = berth("approvals", sid)
    assert pending["id"] in table and "pending" in table and f"berth approve {sid} {pending['id']}" in hint
    _, tail, _ = berth("tail", sid, "--max-events", str(berth("--json", "show", sid)["message_count"]))
    assert "approval needed" in tail and f"berth approve {sid} {pending['id']}" in tail

    decided = berth("--json", "approve", sid, pending["id"], "--message", "fine")
    assert decided["status"] == "allowed" and decided["message"] == "fine"
    wait_for(lambda: (worktree / "cli.txt").exists(), timeout=90, interval=0.1, what="the command to run")
    _, _, err = berth("approve", sid, pending["id"], "--deny", ok=False)
    assert "HTTP 409" in err and "allowed already" in err
    berth("--json", "stop", sid)


def test_diff_commit_merge_and_push_a_sessions_work(berth, stack, tmp_path):
    m = _machine(berth, stack, "review-machine")
    ws = berth("--json", "workspace", "add", "review", str(stack.repo), "--machine", m["id"])
    ack = berth("--json", "launch", ws["id"], "--no-prompt", "--worktree", "cli-review")
    sid, worktree = ack["payload"]["agent_session_id"], Path(ack["payload"]["worktree_path"])
    (worktree / "review.txt").write_text("reviewed\n")  # what an agent would have written

    assert [f["path"] for f in berth("--json", "diff", sid, "--stat")["files"]] == ["review.txt"]
    _, shown, _ = berth("diff", sid)
    assert "review.txt" in shown and "+reviewed" in shown
    commit = berth("--json", "commit", sid, "-m", "Add review notes")["commit"]
    merged = berth("--json", "merge", sid)
    assert merged["merged_commit"] == commit and merged["into"] == "main"
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run(["git", "-C", str(stack.repo), "remote", "add", "origin", str(remote)], check=True)
    assert berth("--json", "push", sid)["ref"] == "refs/heads/cli-review"
    _, _, err = berth("commit", sid, "-m", "again", ok=False)
    assert "HTTP 409" in err and "nothing to commit" in err
    berth("--json", "stop", sid)


def test_deleted_sessions_worktrees_are_listed_and_pruned_keeping_uncommitted_work_and_unmerged_branches(
    berth, stack, tmp_path
):
    repo = make_repo(tmp_path / "prune-repo")
    m = _machine(berth, stack, "prune-machine")
    ws = berth("--json", "workspace", "add", "prune", str(repo), "--machine", m["id"])
    acks = {
        name: berth("--json", "launch", ws["id"], "--no-prompt", "--worktree", f"prune-{name}")["payload"]
        for name in ("clean", "dirty", "committed", "alive")
    }
    paths = {name: Path(ack["worktree_path"]) for name, ack in acks.items()}
    (paths["dirty"] / "notes.txt").write_text("uncommitted work\n")
    (paths["committed"] / "feature.txt").write_text("committed work\n")
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "-C", str(paths["committed"])]
    subprocess.run([*git, "add", "feature.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "feature"], check=True)
    for name in ("clean", "dirty", "committed"):
        berth("--json", "delete", acks[name]["agent_session_id"])
    assert all(p.is_dir() for p in paths.values())  # deleting a session never throws its work away

    listed = {w["path"]: w for w in berth("--json", "worktrees", "list", ws["id"])["worktrees"]}
    assert set(listed) == {str(p) for p in paths.values()}
    assert [n for n in paths if listed[str(paths[n])]["session_deleted"]] == ["clean", "dirty", "committed"]
    assert listed[str(paths["alive"])]["session_status"] == "active" and listed[str(paths["dirty"])]["dirty"]
    _, table, _ = berth("worktrees", "list", ws["id"])
    assert re.search(r"prune-dirty\s+deleted\s+dirty", table) and re.search(r"prune-alive\s+active", table)
    # Another owner's token finds no such workspace.
    other = berth("--json", "token", "create", "--owner", "pruner-else")["token"]
    _, _, err = berth("worktrees", "prune", ws["id"], token=other, ok=False)
    assert "HTTP 404" in err and paths["clean"].is_dir()

    pruned = berth("--json", "worktrees", "prune", ws["id"])
    removed = {w["branch"]: w["branch_deleted"] for w in pruned["removed"]}
    assert removed == {"prune-clean": True, "prune-committed": False}
    assert [(w["branch"], "uncommitted" in w["reason"]) for w in pruned["kept"]] == [("prune-dirty", True)]
    assert not paths["clean"].exists() and not paths["committed"].exists() and paths["dirty"].is_dir()
    assert branches(repo) >= {"prune-committed", "prune-dirty"} and "prune-clean" not in branches(repo)
    _, out, _ = berth("worktrees", "prune", ws["id"], "--force")
    assert f"removed {paths['dirty']}" in out and not paths["dirty"].exists()
    assert [w["path"] for w in berth("--json", "worktrees", "list", ws["id"])["worktrees"]] == [str(paths["alive"])]
    berth("--json", "stop", acks["alive"]["agent_session_id"])


def test_one_command_opens_one_http_client_for_all_its_requests(berth, stack, monkeypatch):
    m = _machine(berth, stack, "pool-machine")
    ws = berth("--json", "workspace", "add", "pool", str(stack.repo), "--machine", m["id"])
    created = berth("--json", "sessions", "create", "CLAUDE_CODE", "--workspace", ws["id"])
    opened = []
    real_init = httpx.Client.__init__

    def counting_init(self, *args, **kwargs):
        opened.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counting_init)
    calls_before = len(stack.calls)
    berth("tail", created["id"])  # the session, then its stored messages: two requests
    assert len(stack.calls) - calls_before >= 2 and len(opened) == 1
    assert all(c.is_closed for c in opened)


def test_sessions_create_and_import(berth, stack, tmp_path):
    m = _machine(berth, stack, "imp-machine")
    ws = berth("--json", "workspace", "add", "imp", str(stack.repo), "--machine", m["id"])
    created = berth("--json", "sessions", "create", "CLAUDE_CODE", "--task", "task-9", "--workspace", ws["id"])
    assert created["status"] == "created" and created["task_id"] == "task-9"
    listed = berth("--json", "sessions", "list", "--task", "task-9")
    assert [s["id"] for s in listed["sessions"]] == [created["id"]]
    assert berth("--json", "show", created["id"])["launched"] is False
    # Nothing will come from a session that was never launched: tail says so and ends at once.
    code, _out, err = _finish(_berth_process(stack, "tail", created["id"]), timeout=60)
    assert code == 0 and "never launched" in err and f"berth update {created['id']} --status active" in err, err

    transcript = tmp_path / "conversation.jsonl"
    transcript.write_text(
        "\n".join(
            json.dumps({"role": role, "content": {"type": "text", "text": text}})
            for role, text in [("user", "What is 2+2?"), ("assistant", "4"), ("user", "And 3+3?"), ("assistant", "6")]
        )
        + "\n"
    )
    imported = berth(
        "--json", "import", ws["id"], "5b3c1f0e-0000-4000-8000-000000000001", str(transcript), "--name", "math"
    )
    assert imported["success"] and imported["message_count"] == 4
    msgs = berth("--json", "messages", imported["agent_session_id"])
    assert [x["content"]["text"] for x in msgs["messages"]] == ["What is 2+2?", "4", "And 3+3?", "6"]


def test_claude_code_round_trip_import_a_real_session_run_a_turn_export_and_resume_elsewhere(
    berth, stack, tmp_path, monkeypatch
):
    # A conversation made by the real claude on a "laptop": a file write (a tool pair) and its answer.
    laptop, laptop_home = tmp_path / "laptop", tmp_path / "laptop-home"
    laptop.mkdir()
    stack.model.script("remember PELICAN", write_file=("note.txt", "PELICAN-42"), text="noted the word")
    done = subprocess.run(
        [
            str(CLAUDE_BIN),
            "-p",
            "please remember PELICAN",
            "--permission-mode",
            "acceptEdits",
            "--output-format",
            "json",
        ],
        cwd=laptop,
        env=child_env(**claude_env(stack.model.url, laptop_home)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    claude_id = json.loads(done.stdout)["session_id"]

    # `berth import --from-claude` finds the latest session of the current directory.
    monkeypatch.chdir(laptop)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(laptop_home / ".claude"))
    m = _machine(berth, stack, "round-trip-machine")
    ws = berth("--json", "workspace", "add", "round-trip", str(stack.repo), "--machine", m["id"])
    imported = berth("--json", "import", ws["id"], "--from-claude")
    assert imported["success"] and imported["message_count"] == 4, imported
    assert imported["claude_code_file"]["lines_skipped"].get("sidechain", 0) == 0
    sid = imported["agent_session_id"]
    assert berth("--json", "show", sid)["provider_session_id"] == claude_id

    # A turn on Berth continues the imported conversation.
    records = berth("--json", "launch", ws["id"], "--agent-session", sid, "-p", "which word was it?", "--follow")
    assert records[-1]["data"]["metadata"].get("turn_complete") is True
    berth_turn = [r for r in stack.model.turn_requests("anthropic") if "which word was it?" in r.user_text][-1]
    assert "please remember PELICAN" in berth_turn.text_dump()
    # Imported without a worktree name ("the main workspace"): a worktree of its own, never the repository's.
    shown = berth("--json", "show", sid)
    assert shown["worktree_name"] == f"berth/{sid}"
    assert Path(shown["data"]["workdir"]).resolve() != stack.repo.resolve()
    berth("--json", "stop", sid)

    # Exported and installed for another directory (and another Claude config), the real claude resumes it.
    desk, desk_home = tmp_path / "desk", tmp_path / "desk-home"
    desk.mkdir()
    monkeypatch.chdir(desk)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(desk_home / ".claude"))
    installed = berth("--json", "export", sid, "--install")
    assert installed["claude_session_id"] == claude_id
    assert Path(installed["path"]) == claude_project_dir(desk, desk_home / ".claude") / f"{claude_id}.jsonl"
    assert stat.S_IMODE(Path(installed["path"]).stat().st_mode) == 0o600
    berth("export", sid, "--install", ok=False)  # never over an existing session file without --force
    done = subprocess.run(
        [str(CLAUDE_BIN), "-p", "and what did you write?", "--resume", claude_id, "--output-format", "json"],
        cwd=desk,
        env=child_env(**claude_env(stack.model.url, desk_home)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout)["result"] == "ok: and what did you write?"
    resumed = [r for r in stack.model.turn_requests("anthropic") if "and what did you write?" in r.user_text][-1]
    history = resumed.text_dump()
    for seen in (
        "please remember PELICAN",
        "PELICAN-42",
        "noted the word",
        "which word was it?",
        "ok: which word was it?",
    ):
        assert seen in history, seen


def test_import_names_what_it_needs_and_from_claude_names_where_it_looked(berth, stack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-config"))
    code, _, err = berth("import", "ws-x", "--from-claude", ok=False)
    assert code == 1 and str(claude_project_dir(tmp_path, tmp_path / "claude-config")) in err
    code, _, err = berth("import", "ws-x", "--from-claude", "0f9e0000-0000-4000-8000-00000000c1a0", ok=False)
    assert code == 1 and str(tmp_path / "claude-config" / "projects") in err
    messages = tmp_path / "berth-messages.jsonl"
    messages.write_text(json.dumps({"role": "user", "content": {"type": "text", "text": "hi"}}) + "\n")
    code, _, err = berth("import", "ws-x", str(messages), ok=False)
    assert code == 1 and "CLAUDE_SESSION_ID" in err


def test_sse_records_parse_frames_comments_and_multiline_data():
    body = ': connected\n\nid: 1\nevent: message\ndata: {"seq": 1}\n\n: keep-alive\n\nid: 2\ndata: a\ndata: b\n\n'
    resp = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())
    assert list(sse_records(resp)) == [
        {"id": "1", "event": "message", "data": {"seq": 1}},
        {"id": "2", "event": "message", "data": "a\nb"},
    ]


def test_unreachable_control_plane_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("BERTH_HOME", str(tmp_path))
    assert main(["--url", f"http://127.0.0.1:{free_port()}", "--token", "x", "sessions", "list"]) == 1
    assert "cannot reach the control plane" in capsys.readouterr().err


def test_help_lists_every_command():
    done = subprocess.run(
        [sys.executable, "-m", "berth_cli", "--help"],
        check=False,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    for command in (
        "token",
        "machine",
        "workspace",
        "launch",
        "import",
        "sessions",
        "show",
        "update",
        "pause",
        "interrupt",
        "resume",
        "stop",
        "delete",
        "send",
        "messages",
        "tail",
        "health",
    ):
        assert command in done.stdout
    assert os.path.basename(sys.executable)


def test_usage_report_by_workspace_owner_and_day(berth, stack):
    for group_by in ("workspace", "owner", "day"):
        report = berth("--json", "usage", "--group-by", group_by)
        assert report["group_by"] == group_by and isinstance(report["groups"], list)
    _, table, _ = berth("usage", "--since", "2020-01-01T00:00:00Z")
    assert "Usage by workspace" in table


def test_health_and_metrics_commands(berth, stack):
    assert berth("--json", "health") == {"status": "ok"}
    _, out, _ = berth("metrics")
    assert "berth_cp_sessions" in out


def test_zz_the_cli_drove_every_rest_endpoint_of_the_openapi_document(stack, request):
    """Runs last: every operation in the live /openapi.json was called by a CLI command in this module."""
    module_tests = [n for n in dir(request.module) if n.startswith("test_")]
    selected = [i for i in request.session.items if i.module is request.module]
    if len(selected) < len(module_tests):
        pytest.skip("endpoint coverage needs the whole module")
    spec = httpx.get(stack.url + "/openapi.json", timeout=30).json()
    missing = []
    # The daemon's side of enrollment: `berth-daemon enroll` calls it (tests/controlplane/test_dial_out_e2e.py).
    daemons_own = {("post", "/api/v1/enroll")}
    for path, ops in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
        for method in ops:
            if (method, path) in daemons_own:
                continue
            if not any(m == method.upper() and pattern.match(p) for m, p in stack.calls):
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"no berth command called: {missing}"


def test_every_metric_named_in_the_readme_is_served(stack):
    """The README's Observability section names real metrics of the control plane and the daemon."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Observability", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`(berth_[a-z_]+)", section))
    assert len(names) >= 8, names
    ports = re.findall(r'"metrics_port": (\d+)|metrics_port=(\d+)', stack.daemon.log_text())
    assert ports, "the daemon did not log its metrics port"
    port = int(ports[-1][0] or ports[-1][1])
    exposed = (
        httpx.get(stack.url + "/metrics", timeout=30).text
        + httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    )
    missing = sorted(n for n in names if f"# TYPE {n} " not in exposed)
    assert not missing, f"README names metrics nobody serves: {missing}"


def test_every_berth_command_in_the_readme_parses():
    """The README's CLI examples use real subcommands and options."""
    import shlex

    from berth_cli import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = [line.split(" #", 1)[0].strip() for line in readme.splitlines()]
    commands = [
        part.strip() for line in lines if line.startswith(("berth ", ".venv/bin/berth ")) for part in line.split(" ; ")
    ]
    assert len(commands) >= 15
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"README command does not parse: {command}") from exc
        assert callable(args.func), command


def test_tail_resumes_after_a_dropped_stream_from_the_last_seq(capsys, monkeypatch, tmp_path):
    """Edge case with a stand-in SSE server: the stream ends after seq 2; tail reconnects with Last-Event-ID: 2."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen_ids: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            seen_ids.append(self.headers.get("Last-Event-ID"))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            start = int(self.headers.get("Last-Event-ID") or 0)
            for seq in range(start + 1, start + 3):
                data = json.dumps({"seq": seq, "role": "assistant", "content": {"type": "text", "text": f"e{seq}"}})
                self.wfile.write(f"id: {seq}\nevent: message\ndata: {data}\n\n".encode())
            self.wfile.flush()
            self.close_connection = True  # the connection drops here

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("BERTH_HOME", str(tmp_path))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["--url", url, "--token", "t", "--json", "tail", "s1", "--max-events", "3", "--forever"]) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    out, err = capsys.readouterr()
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["1", "2", "3"]
    assert seen_ids == [None, "2"]
    assert "reconnecting after seq 2" in err
