"""Worktrees against real git repositories: create, reuse, clone, remove, rollback, no leaks."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path

import pytest

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.worktrees import Worktrees
from tests.support.git_repos import commit_file, git, head_commit, make_repo
from tests.support.waiting import poll


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repos" / "repo", commits=2)


@pytest.fixture
async def worktrees(tmp_path: Path):
    wt = Worktrees(tmp_path / "worktrees")
    yield wt
    await wt.close()


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split())


def registered(repo: Path) -> set[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return {os.path.realpath(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("worktree ")}


async def test_ensure_creates_worktree_on_new_branch_from_head(worktrees: Worktrees, git_repo: Path) -> None:
    info = await worktrees.ensure(git_repo, "feature/login")
    assert info.created and info.branch_created
    assert info.branch == "feature/login"
    assert info.base_commit == head_commit(git_repo)
    assert info.path.name == "feature--login"
    assert info.path.is_relative_to(worktrees.worktrees_root.resolve())
    assert git(info.path, "rev-parse", "--abbrev-ref", "HEAD") == "feature/login"
    assert (info.path / "file0.txt").read_text() == "content 0\n"
    assert str(info.path) in registered(git_repo)


async def test_ensure_reuses_existing_worktree(worktrees: Worktrees, git_repo: Path) -> None:
    first = await worktrees.ensure(git_repo, "reuse-me")
    (first.path / "work.txt").write_text("in progress")
    second = await worktrees.ensure(git_repo, "reuse-me")
    assert second.created is False
    assert second.path == first.path
    assert (second.path / "work.txt").read_text() == "in progress"


async def test_ensure_checks_out_an_existing_branch(worktrees: Worktrees, git_repo: Path) -> None:
    git(git_repo, "branch", "existing", "HEAD~1")
    old = git(git_repo, "rev-parse", "existing")
    info = await worktrees.ensure(git_repo, "existing", base_ref="HEAD")
    assert info.created and not info.branch_created
    assert info.base_commit == old
    assert head_commit(info.path) == old


async def test_ensure_starts_new_branch_at_base_ref(worktrees: Worktrees, git_repo: Path) -> None:
    first = git(git_repo, "rev-parse", "HEAD~1")
    info = await worktrees.ensure(git_repo, "from-base", base_ref=first[:10])
    assert info.base_commit == first
    assert head_commit(info.path) == first


async def test_bad_base_ref_is_invalid_argument_and_leaves_nothing(worktrees: Worktrees, git_repo: Path) -> None:
    before_branches, before_worktrees = branches(git_repo), registered(git_repo)
    for bad in ["no-such-ref", "-rf", "a b"]:
        with pytest.raises(InvalidArgument) as info:
            await worktrees.ensure(git_repo, "wants-base", base_ref=bad)
        assert info.value.field == "base_ref"
    assert branches(git_repo) == before_branches
    assert registered(git_repo) == before_worktrees
    assert not worktrees.worktree_path(git_repo, "wants-base").exists()


async def test_invalid_name_is_refused_before_touching_git(worktrees: Worktrees, git_repo: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        await worktrees.ensure(git_repo, "../escape")
    assert info.value.field == "worktree_name"
    assert not worktrees.worktrees_root.exists()


async def test_branch_checked_out_elsewhere_is_failed_precondition(worktrees: Worktrees, git_repo: Path) -> None:
    with pytest.raises(FailedPrecondition, match="already checked out"):
        await worktrees.ensure(git_repo, "main")
    assert registered(git_repo) == {os.path.realpath(git_repo)}


async def test_foreign_directory_at_worktree_path_is_failed_precondition(worktrees: Worktrees, git_repo: Path) -> None:
    path = worktrees.worktree_path(git_repo, "occupied")
    path.mkdir(parents=True)
    (path / "keep.txt").write_text("not ours")
    with pytest.raises(FailedPrecondition):
        await worktrees.ensure(git_repo, "occupied")
    assert (path / "keep.txt").read_text() == "not ours"
    assert "occupied" not in branches(git_repo)


async def test_colliding_directory_of_another_branch_is_failed_precondition(
    worktrees: Worktrees, git_repo: Path
) -> None:
    await worktrees.ensure(git_repo, "a/b")
    with pytest.raises(FailedPrecondition, match="checked out on a/b"):
        await worktrees.ensure(git_repo, "a--b")
    assert "a--b" not in branches(git_repo)


async def test_ten_concurrent_ensures_into_one_repo_all_succeed(worktrees: Worktrees, git_repo: Path) -> None:
    names = [f"parallel-{i}" for i in range(10)]
    infos = await asyncio.gather(*(worktrees.ensure(git_repo, n) for n in names))
    assert sorted(i.branch for i in infos) == sorted(names)
    assert all(i.created for i in infos)
    assert len({i.path for i in infos}) == 10
    assert {str(i.path) for i in infos} <= registered(git_repo)
    assert set(names) <= branches(git_repo)


async def test_concurrent_ensure_of_same_name_creates_once(worktrees: Worktrees, git_repo: Path) -> None:
    infos = await asyncio.gather(*(worktrees.ensure(git_repo, "same") for _ in range(4)))
    assert sorted(i.created for i in infos) == [False, False, False, True]
    assert len({i.path for i in infos}) == 1


async def test_remove_refuses_dirty_worktree_unless_forced(worktrees: Worktrees, git_repo: Path) -> None:
    info = await worktrees.ensure(git_repo, "dirty")
    assert not await worktrees.is_dirty(info.path)
    (info.path / "untracked.txt").write_text("new")
    assert await worktrees.is_dirty(info.path)
    with pytest.raises(FailedPrecondition, match="force"):
        await worktrees.remove(info.path)
    assert info.path.exists()
    branch, deleted = await worktrees.remove(info.path, force=True)
    assert (branch, deleted) == ("dirty", False)
    assert not info.path.exists()
    assert "dirty" in branches(git_repo)
    assert str(info.path) not in registered(git_repo)


async def test_remove_detects_modified_tracked_file(worktrees: Worktrees, git_repo: Path) -> None:
    info = await worktrees.ensure(git_repo, "modified")
    (info.path / "file0.txt").write_text("changed")
    with pytest.raises(FailedPrecondition):
        await worktrees.remove(info.path)


async def test_remove_with_delete_branch_deletes_it(worktrees: Worktrees, git_repo: Path) -> None:
    info = await worktrees.ensure(git_repo, "temp/branch")
    commit_file(info.path, "new.txt", "x")  # unmerged work: -D still deletes it
    branch, deleted = await worktrees.remove(info.path, delete_branch=True)
    assert (branch, deleted) == ("temp/branch", True)
    assert "temp/branch" not in branches(git_repo)
    assert not info.path.exists()


async def test_remove_unknown_path_is_not_found(worktrees: Worktrees, git_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        await worktrees.remove(git_repo)  # the main worktree is never ours to remove
    with pytest.raises(NotFound):
        await worktrees.remove(tmp_path / "nowhere")
    info = await worktrees.ensure(git_repo, "gone")
    await worktrees.remove(info.path)
    with pytest.raises(NotFound):
        await worktrees.remove(info.path)


async def test_remove_of_vanished_directory_prunes_and_deletes_branch(worktrees: Worktrees, git_repo: Path) -> None:
    info = await worktrees.ensure(git_repo, "vanished")
    shutil.rmtree(info.path)
    branch, deleted = await worktrees.remove(info.path, delete_branch=True)
    assert (branch, deleted) == ("vanished", True)
    assert str(info.path) not in registered(git_repo)


async def test_ensure_recreates_worktree_whose_directory_vanished(worktrees: Worktrees, git_repo: Path) -> None:
    info = await worktrees.ensure(git_repo, "recreate")
    shutil.rmtree(info.path)
    again = await worktrees.ensure(git_repo, "recreate")
    assert again.created and not again.branch_created
    assert (again.path / "file0.txt").exists()


async def test_branch_held_by_vanished_worktree_elsewhere_is_reclaimed(
    worktrees: Worktrees, git_repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "manual-worktree"
    git(git_repo, "worktree", "add", "-q", "-b", "held", str(outside))
    shutil.rmtree(outside)
    info = await worktrees.ensure(git_repo, "held")
    assert info.created and not info.branch_created
    assert str(outside) not in registered(git_repo)


async def test_rollback_removes_created_worktree_and_branch(worktrees: Worktrees, git_repo: Path) -> None:
    before = branches(git_repo)
    info = await worktrees.ensure(git_repo, "rolled-back")
    (info.path / "scratch.txt").write_text("agent started writing")
    await worktrees.rollback(info)
    assert not info.path.exists()
    assert branches(git_repo) == before
    assert registered(git_repo) == {os.path.realpath(git_repo)}


async def test_rollback_keeps_existing_branch_and_reused_worktree(worktrees: Worktrees, git_repo: Path) -> None:
    git(git_repo, "branch", "kept")
    info = await worktrees.ensure(git_repo, "kept")
    await worktrees.rollback(info)
    assert "kept" in branches(git_repo)
    assert not info.path.exists()

    reused_first = await worktrees.ensure(git_repo, "reused")
    reused = await worktrees.ensure(git_repo, "reused")
    await worktrees.rollback(reused)
    assert reused_first.path.exists()


async def test_git_version_is_reported(worktrees: Worktrees) -> None:
    version = await worktrees.git_version()
    assert version[0].isdigit() and version.count(".") >= 1


async def test_closed_manager_refuses_work_and_close_is_idempotent(worktrees: Worktrees, git_repo: Path) -> None:
    await worktrees.close()
    await worktrees.close()
    with pytest.raises(FailedPrecondition):
        await worktrees.ensure(git_repo, "after-close")


async def test_close_waits_for_a_running_operation(
    worktrees: Worktrees, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import daemon.worktrees as worktrees_module

    started, release = threading.Event(), threading.Event()
    real = worktrees_module._ref_commit

    def held(*args):  # the operation's first git read, in its worker thread: held until released
        started.set()
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(worktrees_module, "_ref_commit", held)
    task = asyncio.create_task(worktrees.ensure(git_repo, "in-flight"))
    await poll(started.is_set, what="the operation to start git")
    closing = asyncio.create_task(worktrees.close())
    done, _ = await asyncio.wait({closing}, timeout=0.3)
    assert not done, "close() returned while an operation was still running"
    release.set()
    await closing
    assert task.done()
    assert task.result().created


def other_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}


async def test_many_ensure_remove_cycles_leak_no_file_descriptors_or_threads(
    worktrees: Worktrees, git_repo: Path
) -> None:
    # Warm up: the thread pool and GitPython's lazy imports open what they keep open.
    info = await worktrees.ensure(git_repo, "warmup")
    await worktrees.remove(info.path, delete_branch=True)
    fds_before = len(os.listdir("/proc/self/fd"))
    threads_before = other_threads()
    for i in range(50):
        info = await worktrees.ensure(git_repo, f"cycle-{i % 5}")
        await worktrees.is_dirty(info.path)
        await worktrees.remove(info.path, delete_branch=True)
    assert len(os.listdir("/proc/self/fd")) == fds_before
    # The event loop's default executor keeps a bounded pool of "asyncio_N" threads; nothing else may grow.
    assert other_threads() == threads_before
    assert registered(git_repo) == {os.path.realpath(git_repo)}
    assert branches(git_repo) == {"main"}
