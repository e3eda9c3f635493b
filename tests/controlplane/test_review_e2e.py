"""Review and ship through REST with the real daemon and the real claude and codex: the agent's file shows
in the diff, is committed, merged into the base branch (whose checkout follows), and pushed to a bare
remote; a conflicting merge changes nothing anywhere, and every refusal says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.controlplane.helpers import wait_messages
from tests.support.git_repos import commit_file, git

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def alice(cp, daemon_factory, claude_provider, codex_provider, git_repo):
    d = daemon_factory(config={"providers": {"claude_code": claude_provider, "codex": codex_provider}})
    client = await cp.owner("alice")
    m = await cp.machine(d.target, "alice")
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    return client, ws


def _turn_done(ms: list[dict]) -> bool:
    return any(m["metadata"].get("turn_complete") for m in ms)


async def _session_writing(
    client, ws: dict, model_server, provider: str, name: str, content: str, worktree_name: str
) -> tuple[str, Path]:
    """A session whose agent wrote `name` (claude's Write wants an absolute path: launch first, then ask)."""
    r = await client.post(
        f"/api/v1/workspaces/{ws['id']}/sessions",
        json={
            "worktree_name": worktree_name,
            "session_settings": {
                "code": {"default_provider": provider, "permissions": "auto" if provider == "codex" else "ask"}
            },
        },
    )
    assert r.status_code == 200, r.text
    sid, path = r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])
    model_server.script(f"write {worktree_name}", write_file=(str(path / name), content), text="written")
    r = await client.post(f"/api/sessions/{sid}/message", json={"content": f"please write {worktree_name}"})
    assert r.status_code == 200, r.text
    await wait_messages(client, sid, _turn_done, timeout=120, what="the turn's end")
    return sid, path


def _repo_state(repo: Path) -> tuple[str, str, str]:
    return (
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        git(repo, "status", "--porcelain"),
        git(repo, "rev-parse", "HEAD"),
    )


@pytest.mark.parametrize("provider", ["claude_code", "codex"])
async def test_the_agents_file_is_diffed_committed_merged_and_pushed(alice, git_repo, model_server, provider, tmp_path):
    client, ws = alice
    sid, worktree = await _session_writing(client, ws, model_server, provider, "notes.txt", "one\ntwo\n", "notes")
    assert (worktree / "notes.txt").exists()

    d = (await client.get(f"/api/sessions/{sid}/diff")).json()
    assert d["base_commit"] == git(git_repo, "rev-parse", "main") and d["truncated"] is False
    assert [(f["path"], f["status"], f["additions"]) for f in d["files"]] == [("notes.txt", "added", 2)]
    assert "+one" in d["patch"] and "notes.txt" in d["patch"]
    stat = (await client.get(f"/api/sessions/{sid}/diff", params={"stat_only": "true"})).json()
    assert stat["patch"] is None and stat["files"] == d["files"]
    assert git(worktree, "status", "--porcelain").strip() == "?? notes.txt"  # the diff wrote no index

    r = await client.post(
        f"/api/sessions/{sid}/commit", json={"message": "Add notes", "author": "Ada <ada@example.com>"}
    )
    assert r.status_code == 200, r.text
    commit = r.json()["commit"]
    assert git(worktree, "log", "-1", "--format=%an <%ae> %s").strip() == "Ada <ada@example.com> Add notes"
    again = await client.post(f"/api/sessions/{sid}/commit", json={"message": "again"})
    assert again.status_code == 409 and "nothing to commit" in again.text

    r = await client.post(f"/api/sessions/{sid}/merge", json={})
    assert r.status_code == 200, r.text
    assert r.json()["into"] == "main" and r.json()["merged_commit"] == commit  # a fast-forward
    assert git(git_repo, "show", "main:notes.txt") == "one\ntwo"  # (the helper strips)
    assert (git_repo / "notes.txt").read_text() == "one\ntwo\n"  # the main checkout followed, clean
    assert git(git_repo, "status", "--porcelain").strip() == ""

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(git_repo, "remote", "add", "origin", str(remote))
    r = await client.post(f"/api/sessions/{sid}/push", json={})
    assert r.status_code == 200, r.text
    assert git(remote, "rev-parse", "refs/heads/notes").strip() == commit
    r = await client.post(f"/api/sessions/{sid}/push", json={"remote": "nowhere"})
    assert r.status_code == 404 and "nowhere" in r.text


async def test_a_conflicting_merge_lists_the_file_and_changes_nothing(alice, git_repo, model_server):
    client, ws = alice
    first, _ = await _session_writing(client, ws, model_server, "claude_code", "shared.txt", "first\n", "first")
    second, second_wt = await _session_writing(
        client, ws, model_server, "claude_code", "shared.txt", "second\n", "second"
    )
    for sid in (first, second):
        assert (await client.post(f"/api/sessions/{sid}/commit", json={"message": f"{sid} edit"})).status_code == 200
    r = await client.post(f"/api/sessions/{first}/merge", json={"strategy": "squash"})
    assert r.status_code == 200, r.text
    assert len(git(git_repo, "log", "--format=%p", "-1", "main").split()) == 1  # squash: one parent
    before, wt_before = _repo_state(git_repo), _repo_state(second_wt)

    r = await client.post(f"/api/sessions/{second}/merge", json={})
    assert r.status_code == 409, r.text
    assert r.json()["conflicts"] == ["shared.txt"]
    assert _repo_state(git_repo) == before and _repo_state(second_wt) == wt_before
    r = await client.post(f"/api/sessions/{second}/merge", json={"strategy": "fast-forward"})
    assert r.status_code == 409 and "fast-forward" in r.text
    assert _repo_state(git_repo) == before


async def test_a_dirty_target_checkout_refuses_the_merge_and_a_rejecting_remote_is_readable(
    alice, git_repo, model_server, tmp_path
):
    client, ws = alice
    sid, _ = await _session_writing(client, ws, model_server, "claude_code", "feature.txt", "f\n", "feature")
    assert (await client.post(f"/api/sessions/{sid}/commit", json={"message": "feature"})).status_code == 200
    commit_file(git_repo, "README.md", "moved on\n")  # main has its own commit: a real merge
    (git_repo / "README.md").write_text("someone's uncommitted edit\n")
    before = _repo_state(git_repo)
    r = await client.post(f"/api/sessions/{sid}/merge", json={})
    assert r.status_code == 409 and "uncommitted changes" in r.text, r.text
    assert _repo_state(git_repo) == before and (git_repo / "README.md").read_text() == "someone's uncommitted edit\n"
    git(git_repo, "checkout", "--", "README.md")
    r = await client.post(f"/api/sessions/{sid}/merge", json={})
    assert r.status_code == 200, r.text
    assert len(git(git_repo, "log", "--format=%p", "-1", "main").split()) == 2  # a merge commit
    assert (git_repo / "feature.txt").read_text() == "f\n"

    remote = tmp_path / "strict.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    git(git_repo, "remote", "add", "strict", str(remote))
    r = await client.post(f"/api/sessions/{sid}/push", json={"remote": "strict"})
    assert r.status_code == 409 and "refused" in r.text, r.text


async def test_review_calls_are_the_owners_and_refuse_bad_input(alice, cp, git_repo, model_server):
    client, ws = alice
    sid, _ = await _session_writing(client, ws, model_server, "claude_code", "x.txt", "x\n", "owned")
    bob = await cp.owner("bob")
    for method, path, body in (
        ("GET", "diff", None),
        ("POST", "commit", {"message": "m"}),
        ("POST", "merge", {}),
        ("POST", "push", {}),
    ):
        r = await bob.request(method, f"/api/sessions/{sid}/{path}", json=body)
        assert r.status_code == 404, (path, r.text)
    for body, field in (({"message": ""}, "message"), ({"message": "m", "author": "--upload-pack=x"}, "author")):
        r = await client.post(f"/api/sessions/{sid}/commit", json=body)
        assert r.status_code == 422 and field in r.text, r.text
    r = await client.post(f"/api/sessions/{sid}/merge", json={"into": "--force"})
    assert r.status_code == 422 and "into" in r.text, r.text
    r = await client.post(f"/api/sessions/{sid}/push", json={"remote": "-oProxyCommand=x"})
    assert r.status_code == 422 and "remote" in r.text, r.text
    assert git(git_repo, "status", "--porcelain").strip() == ""


async def test_commit_waits_for_the_turn_to_end(alice, model_server):
    client, ws = alice
    model_server.script("think slowly", text="done thinking", delay=3)
    r = await client.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "think slowly"})
    assert r.status_code == 200, r.text
    sid, worktree = r.json()["payload"]["agent_session_id"], Path(r.json()["payload"]["worktree_path"])

    async def turn_running():
        return any("think slowly" in q.user_text for q in model_server.turn_requests())

    from tests.controlplane.helpers import poll

    await poll(turn_running, what="the turn to reach the model")
    (worktree / "half.txt").write_text("half done")
    r = await client.post(f"/api/sessions/{sid}/commit", json={"message": "too early"})
    assert r.status_code == 409 and "turn" in r.text, r.text
    assert git(worktree, "status", "--porcelain") == "?? half.txt"  # nothing was staged or committed
    await wait_messages(client, sid, _turn_done, timeout=120)
    assert (await client.post(f"/api/sessions/{sid}/commit", json={"message": "now"})).status_code == 200
