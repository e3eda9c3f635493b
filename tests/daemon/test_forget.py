"""ForgetSession and ListWorktrees over gRPC, with the real claude CLI: a forgotten session is gone from
every read, its worktree stays its owner's (listed, never another owner's to see, take or remove), and
RemoveWorktree by the forgotten session's id removes it, deleting the branch only when nothing is lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from tests.daemon.harness import Harness, branches, provider_table

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def harness(daemon_factory, claude_provider) -> Harness:
    return Harness(daemon_factory(config=provider_table(claude_provider)))


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def _commit_in(worktree: Path, name: str) -> None:
    (worktree / name).write_text("work of the session\n")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-C", str(worktree)]
    subprocess.run([*git, "add", name], check=True)
    subprocess.run([*git, "commit", "-q", "-m", f"add {name}"], check=True)


def _listed(harness: Harness, repo: Path, owner: str) -> dict[str, pb.Worktree]:
    reply = harness.stub.ListWorktrees(pb.ListWorktreesRequest(repository=str(repo), owner=owner), timeout=30)
    return {w.path: w for w in reply.worktrees}


def test_a_forgotten_sessions_worktree_stays_its_owners_until_removed(harness, git_repo):
    stub = harness.stub
    ack = harness.launch(git_repo, owner="alice", worktree_name="kept")
    sid = ack.session.agent_session_id
    harness.started(ack)
    path = Path(ack.payload["worktree_path"])
    forget = pb.ForgetSessionRequest(agent_session_id=sid, owner="alice")

    code, _ = _code(lambda: stub.ForgetSession(forget, timeout=30))
    assert code == grpc.StatusCode.FAILED_PRECONDITION  # never while the agent runs
    stub.StopSession(pb.StopSessionRequest(agent_session_id=sid), timeout=60)
    code, _ = _code(lambda: stub.ForgetSession(pb.ForgetSessionRequest(agent_session_id=sid, owner="bob"), timeout=30))
    assert code == grpc.StatusCode.NOT_FOUND  # another owner's session is not found
    (path / "draft.txt").write_text("uncommitted work of alice")

    assert stub.ForgetSession(forget, timeout=30).worktree_path == str(path)
    code, _ = _code(lambda: harness.session(sid))
    assert code == grpc.StatusCode.NOT_FOUND
    assert sid not in {s.agent_session_id for s in stub.ListSessions(pb.ListSessionsRequest(), timeout=10).sessions}
    code, _ = _code(lambda: stub.ForgetSession(forget, timeout=30))
    assert code == grpc.StatusCode.NOT_FOUND

    mine = _listed(harness, git_repo, "alice")
    assert list(mine) == [str(path)]
    assert mine[str(path)].forgotten and mine[str(path)].dirty and mine[str(path)].agent_session_id == sid
    assert mine[str(path)].branch == ack.payload["branch"]
    assert _listed(harness, git_repo, "bob") == {}
    before = branches(git_repo)
    code, details = _code(lambda: harness.launch(git_repo, owner="bob", worktree_name="kept"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("worktree_name:")
    code, _ = _code(
        lambda: stub.RemoveWorktree(pb.RemoveWorktreeRequest(agent_session_id=sid, owner="bob", force=True), timeout=30)
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = _code(  # nor by its path
        lambda: stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(worktree_path=str(path), owner="bob", force=True), timeout=30
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND and path.is_dir()
    code, details = _code(
        lambda: stub.RemoveWorktree(pb.RemoveWorktreeRequest(agent_session_id=sid, owner="alice"), timeout=30)
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION  # dirty, and no force
    assert (path / "draft.txt").exists() and branches(git_repo) == before

    # The branch holds no commit of its own: it goes with the worktree.
    done = stub.RemoveWorktree(
        pb.RemoveWorktreeRequest(agent_session_id=sid, owner="alice", force=True, delete_branch_if_merged=True),
        timeout=30,
    )
    assert done.removed and done.branch_deleted and done.branch == ack.payload["branch"]
    assert not path.exists() and ack.payload["branch"] not in branches(git_repo)
    assert _listed(harness, git_repo, "alice") == {}
    code, _ = _code(
        lambda: stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(agent_session_id=sid, owner="alice", force=True), timeout=30
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_removing_a_forgotten_worktree_keeps_a_branch_with_commits_of_its_own(harness, git_repo):
    stub = harness.stub
    ack = harness.launch(git_repo, owner="alice", worktree_name="committed")
    sid = ack.session.agent_session_id
    harness.started(ack)
    stub.StopSession(pb.StopSessionRequest(agent_session_id=sid), timeout=60)
    path = Path(ack.payload["worktree_path"])
    _commit_in(path, "feature.txt")
    stub.ForgetSession(pb.ForgetSessionRequest(agent_session_id=sid, owner="alice"), timeout=30)
    assert not _listed(harness, git_repo, "alice")[str(path)].dirty

    done = stub.RemoveWorktree(
        pb.RemoveWorktreeRequest(agent_session_id=sid, owner="alice", delete_branch_if_merged=True), timeout=30
    )
    assert done.removed and not done.branch_deleted
    assert not path.exists() and ack.payload["branch"] in branches(git_repo)


def test_relaunching_into_a_forgotten_worktree_takes_it_over(harness, git_repo):
    stub = harness.stub
    first = harness.launch(git_repo, owner="alice", worktree_name="again")
    harness.started(first)
    old = first.session.agent_session_id
    stub.StopSession(pb.StopSessionRequest(agent_session_id=old), timeout=60)
    stub.ForgetSession(pb.ForgetSessionRequest(agent_session_id=old, owner="alice"), timeout=30)

    second = harness.launch(git_repo, owner="alice", worktree_name="again")
    harness.started(second)
    entry = _listed(harness, git_repo, "alice")[first.payload["worktree_path"]]
    assert entry.agent_session_id == second.session.agent_session_id
    assert not entry.forgotten and entry.session_status == "active"
    code, _ = _code(
        lambda: stub.RemoveWorktree(
            pb.RemoveWorktreeRequest(agent_session_id=old, owner="alice", force=True), timeout=30
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND  # the old id no longer names it
    stub.StopSession(pb.StopSessionRequest(agent_session_id=second.session.agent_session_id), timeout=60)
