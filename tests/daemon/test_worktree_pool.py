"""The ready-worktree pool against real git: claims look fresh, refill, refresh, bounds, cleanup."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from daemon.errors import FailedPrecondition, NotFound
from daemon.worktree_pool import POOL_DIR
from daemon.worktrees import Worktrees
from tests.support.git_repos import commit_file, git, head_commit, make_repo
from tests.support.waiting import poll


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repos" / "repo", commits=3)


@pytest.fixture
async def pooled(tmp_path: Path):
    wt = Worktrees(tmp_path / "worktrees", pool_size=2, pool_refresh_seconds=0.2)
    yield wt
    await wt.close()


@pytest.fixture
async def plain(tmp_path: Path):
    wt = Worktrees(tmp_path / "plain-worktrees")
    yield wt
    await wt.close()


def worktree_list(repo: Path) -> dict[str, str]:
    """realpath -> branch ('' when detached) from `git worktree list --porcelain`."""
    out: dict[str, str] = {}
    path = ""
    for line in git(repo, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = os.path.realpath(line.split(" ", 1)[1])
            out[path] = ""
        elif line.startswith("branch "):
            out[path] = line.split(" ", 1)[1].removeprefix("refs/heads/")
    return out


def pool_entries(wt: Worktrees, repo: Path) -> list[Path]:
    pool_dir = wt.worktree_path(repo, "x").parent / POOL_DIR
    return sorted(pool_dir.iterdir()) if pool_dir.is_dir() else []


def pooled_registrations(repo: Path) -> list[str]:
    return [p for p in worktree_list(repo) if f"/{POOL_DIR}/" in p]


async def warm(wt: Worktrees, repo: Path, count: int | None = None) -> None:
    await wt.warm(repo)
    await wt.wait_pool_ready(repo, count, timeout=60)


def snapshot(worktree: Path) -> dict[str, object]:
    """Everything a user could inspect about a fresh worktree, minus its path."""
    return {
        "branch": git(worktree, "rev-parse", "--abbrev-ref", "HEAD"),
        "head": git(worktree, "rev-parse", "HEAD"),
        "status": git(worktree, "status", "--porcelain", "--untracked-files=all", "--ignored"),
        "files": sorted(p.relative_to(worktree).as_posix() for p in worktree.rglob("*") if ".git" not in p.parts),
        "tracked": git(worktree, "ls-files", "--stage"),
        "stash": git(worktree, "stash", "list"),
    }


async def test_claimed_worktree_is_indistinguishable_from_a_fresh_one(
    pooled: Worktrees, plain: Worktrees, git_repo: Path
) -> None:
    await warm(pooled, git_repo)
    info = await pooled.ensure(git_repo, "feature/login")
    fresh = await plain.ensure(git_repo, "feature/fresh")
    assert info.pooled and not fresh.pooled
    assert info.created and info.branch_created
    assert info.path == pooled.worktree_path(git_repo, "feature/login")
    assert info.base_commit == head_commit(git_repo) == fresh.base_commit
    listing = worktree_list(git_repo)
    assert listing[str(info.path)] == "feature/login"
    mine, theirs = snapshot(info.path), snapshot(fresh.path)
    assert theirs["branch"] == "feature/fresh"
    mine["branch"] = theirs["branch"]
    assert mine == theirs
    assert mine["status"] == ""
    # A new branch without upstream, like `git worktree add -b`.
    assert git(info.path, "for-each-ref", "--format=%(upstream)", "refs/heads/feature/login") == ""


async def test_pool_refills_after_a_claim(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    before = set(pool_entries(pooled, git_repo))
    assert len(before) == 2
    info = await pooled.ensure(git_repo, "one")
    assert info.pooled
    await pooled.wait_pool_ready(git_repo, timeout=60)
    after = set(pool_entries(pooled, git_repo))
    assert len(after) == 2 and after != before
    assert len(pooled_registrations(git_repo)) == 2
    second = await pooled.ensure(git_repo, "two")
    assert second.pooled


async def test_pool_follows_head_when_it_moves(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    new_head = commit_file(git_repo, "later.txt", "later\n")
    await poll(lambda: pooled.pool_stats()[git_repo.resolve()].commit == new_head, what="pool target to move")
    await pooled.wait_pool_ready(git_repo, timeout=60)
    for member in pool_entries(pooled, git_repo):
        assert head_commit(member) == new_head
        assert (member / "later.txt").exists()
    info = await pooled.ensure(git_repo, "after-move")
    assert info.pooled and info.base_commit == new_head
    assert (info.path / "later.txt").read_text() == "later\n"


async def test_claim_from_a_stale_pool_lands_on_the_new_head(tmp_path: Path, git_repo: Path) -> None:
    # A refresh interval longer than the test: only the launch itself can notice the move.
    wt = Worktrees(tmp_path / "w", pool_size=1, pool_refresh_seconds=3600)
    try:
        await warm(wt, git_repo)
        git(git_repo, "rm", "-q", "file0.txt")
        git(git_repo, "commit", "-q", "-m", "drop file0")
        new_head = commit_file(git_repo, "added.txt", "added\n")
        info = await wt.ensure(git_repo, "stale-claim")
        assert info.pooled and info.base_commit == new_head
        assert head_commit(info.path) == new_head
        assert git(info.path, "status", "--porcelain", "--untracked-files=all") == ""
        assert (info.path / "added.txt").exists() and not (info.path / "file0.txt").exists()
        # The launch told the pool that HEAD moved; the refill is at the new commit.
        await wt.wait_pool_ready(git_repo, timeout=60)
    finally:
        await wt.close()


async def test_claim_honours_an_explicit_base_ref(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    older = git(git_repo, "rev-parse", "HEAD~2")
    info = await pooled.ensure(git_repo, "from-old", base_ref="HEAD~2")
    assert info.pooled and info.base_commit == older
    assert head_commit(info.path) == older
    assert not (info.path / "file2.txt").exists()
    assert git(info.path, "status", "--porcelain", "--untracked-files=all") == ""


async def test_existing_branch_and_reuse_leave_the_pool_alone(pooled: Worktrees, git_repo: Path) -> None:
    git(git_repo, "branch", "existing", "HEAD~1")
    await warm(pooled, git_repo)
    members = set(pool_entries(pooled, git_repo))
    info = await pooled.ensure(git_repo, "existing")
    assert info.created and not info.pooled and not info.branch_created
    again = await pooled.ensure(git_repo, "existing")
    assert not again.created
    assert set(pool_entries(pooled, git_repo)) == members


async def test_refused_branch_name_leaves_nothing_and_keeps_the_member(pooled: Worktrees, git_repo: Path) -> None:
    git(git_repo, "branch", "taken")
    await warm(pooled, git_repo)
    members = set(pool_entries(pooled, git_repo))
    before = worktree_list(git_repo)
    # "taken/child" cannot coexist with the branch "taken" (git cannot lock the ref).
    with pytest.raises(FailedPrecondition):
        await pooled.ensure(git_repo, "taken/child")
    assert worktree_list(git_repo) == before
    assert not pooled.worktree_path(git_repo, "taken/child").exists()
    assert set(pool_entries(pooled, git_repo)) == members
    assert pooled.pool_stats()[git_repo.resolve()].ready == 2


async def test_rollback_of_a_claimed_worktree_removes_it_and_its_branch(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    info = await pooled.ensure(git_repo, "rolled")
    assert info.pooled
    await pooled.rollback(info)
    assert not info.path.exists()
    assert "rolled" not in git(git_repo, "branch", "--list", "rolled")
    assert str(info.path) not in worktree_list(git_repo)


async def test_concurrent_launches_with_a_small_pool_all_succeed(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    names = [f"burst-{i}" for i in range(6)]
    infos = await asyncio.gather(*(pooled.ensure(git_repo, n) for n in names))
    assert sorted(i.branch for i in infos) == names
    assert sum(i.pooled for i in infos) >= 2
    listing = worktree_list(git_repo)
    for info in infos:
        assert listing[str(info.path)] == info.branch
        assert git(info.path, "status", "--porcelain") == ""
    await pooled.wait_pool_ready(git_repo, timeout=60)
    # Bounded: never more than pool_size ready worktrees, however many launches.
    assert len(pool_entries(pooled, git_repo)) == 2
    assert len(pooled_registrations(git_repo)) == 2


async def test_pooled_repositories_are_bounded(tmp_path: Path) -> None:
    repos = [make_repo(tmp_path / "repos" / f"r{i}", commits=1) for i in range(3)]
    wt = Worktrees(tmp_path / "w", pool_size=1, pool_repositories=2)
    try:
        for repo in repos:
            await warm(wt, repo)
        await poll(lambda: not pool_entries(wt, repos[0]), what="least recently used pool to drain")
        assert set(wt.pool_stats()) == {repos[1].resolve(), repos[2].resolve()}
        assert pooled_registrations(repos[0]) == []
        assert len(pool_entries(wt, repos[2])) == 1
    finally:
        await wt.close()


async def test_pool_worktrees_are_not_removable_as_user_worktrees(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    member = pool_entries(pooled, git_repo)[0]
    with pytest.raises(NotFound):
        await pooled.remove(member, force=True)
    assert member.exists()


async def test_close_removes_every_pooled_worktree(tmp_path: Path, git_repo: Path) -> None:
    wt = Worktrees(tmp_path / "w", pool_size=3)
    await warm(wt, git_repo)
    user = await wt.ensure(git_repo, "kept-by-user")
    await wt.close()
    assert pool_entries(wt, git_repo) == []
    assert set(worktree_list(git_repo)) == {os.path.realpath(git_repo), str(user.path)}
    assert git(git_repo, "worktree", "prune", "--dry-run", "-v") == ""
    assert user.path.exists()


async def test_setting_the_size_to_zero_removes_the_pool(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    await pooled.set_pool_size(0)
    assert pool_entries(pooled, git_repo) == []
    assert pooled_registrations(git_repo) == []
    info = await pooled.ensure(git_repo, "no-pool")
    assert not info.pooled
    assert pooled_registrations(git_repo) == []


async def test_leftovers_of_an_earlier_process_are_swept(tmp_path: Path, git_repo: Path) -> None:
    wt = Worktrees(tmp_path / "w")
    leftover = wt.worktree_path(git_repo, "x").parent / POOL_DIR / "0badc0de-leftover"
    leftover.parent.mkdir(parents=True)
    (leftover.parent.parent / ".berth-repository").write_text(f"{git_repo.resolve()}\n")
    git(git_repo, "worktree", "add", "-q", "--detach", str(leftover))
    trash = leftover.parent / ".trash-abc"
    (trash / "deep").mkdir(parents=True)
    try:
        await wt.ensure(git_repo, "triggers-sweep")
        await poll(lambda: not leftover.parent.exists(), what="sweep of the leftover pool")
        assert pooled_registrations(git_repo) == []
        assert git(git_repo, "worktree", "prune", "--dry-run", "-v") == ""
    finally:
        await wt.close()


async def test_repository_with_submodules_is_claimed_like_a_fresh_add(
    pooled: Worktrees, plain: Worktrees, tmp_path: Path, git_repo: Path
) -> None:
    sub = make_repo(tmp_path / "repos" / "sub", commits=1)
    git(git_repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor/sub")
    git(git_repo, "commit", "-q", "-m", "add submodule")
    await warm(pooled, git_repo)
    info = await pooled.ensure(git_repo, "with-sub")
    fresh = await plain.ensure(git_repo, "fresh-sub")
    assert info.pooled
    mine, theirs = snapshot(info.path), snapshot(fresh.path)
    mine["branch"] = theirs["branch"]
    assert mine == theirs


async def test_pooled_worktrees_deleted_by_hand_are_replaced(pooled: Worktrees, git_repo: Path) -> None:
    await warm(pooled, git_repo)
    for member in pool_entries(pooled, git_repo):
        shutil.rmtree(member)
    info = await pooled.ensure(git_repo, "after-vandalism")
    assert info.created and not info.pooled
    assert worktree_list(git_repo)[str(info.path)] == "after-vandalism"
    # The pool keeps working: it refills and the next launch claims.
    await pooled.wait_pool_ready(git_repo, timeout=60)
    later = await pooled.ensure(git_repo, "later")
    assert later.pooled
    await pooled.wait_pool_ready(git_repo, timeout=60)
    # No registration of the deleted ones is left behind.
    assert git(git_repo, "worktree", "prune", "--dry-run", "-v") == ""
    assert all(Path(p).is_dir() for p in pooled_registrations(git_repo))


async def test_a_move_git_refuses_pauses_the_pool_and_falls_back(tmp_path: Path, git_repo: Path) -> None:
    wt = Worktrees(tmp_path / "w", pool_size=1)
    try:
        await warm(wt, git_repo)
        # A locked worktree cannot be moved: git refuses the claim.
        git(git_repo, "worktree", "lock", str(pool_entries(wt, git_repo)[0]))
        info = await wt.ensure(git_repo, "fallback")
        assert info.created and not info.pooled
        assert head_commit(info.path) == head_commit(git_repo)
        assert worktree_list(git_repo)[str(info.path)] == "fallback"
        await poll(lambda: pooled_registrations(git_repo) == [], what="paused pool to drain")
        later = await wt.ensure(git_repo, "later")
        assert not later.pooled
    finally:
        await wt.close()
    assert pool_entries(wt, git_repo) == []


async def test_a_paused_pool_refills_after_its_retry_time_and_launches_claim_again(
    tmp_path: Path, git_repo: Path
) -> None:
    wt = Worktrees(tmp_path / "w", pool_size=1, pool_refresh_seconds=3600, pool_retry_seconds=0.5)
    try:
        await warm(wt, git_repo)
        locked = pool_entries(wt, git_repo)[0]
        git(git_repo, "worktree", "lock", str(locked))
        assert not (await wt.ensure(git_repo, "refused")).pooled
        # The refused (locked) member is dropped, and pooling resumes on its own with a new one.
        await wt.wait_pool_ready(git_repo, timeout=60)
        assert [str(p) for p in pool_entries(wt, git_repo)] != [str(locked)]
        again = await wt.ensure(git_repo, "pooled-again")
        assert again.pooled
        assert worktree_list(git_repo)[str(again.path)] == "pooled-again"
    finally:
        await wt.close()
    assert pool_entries(wt, git_repo) == []
    assert pooled_registrations(git_repo) == []


async def test_deferred_checkout_registers_first_and_populate_makes_it_indistinguishable_from_a_fresh_one(
    plain: Worktrees, tmp_path: Path, git_repo: Path
) -> None:
    deferred_wt = Worktrees(tmp_path / "deferred-worktrees")
    try:
        info = await deferred_wt.ensure(git_repo, "feature/later", defer_checkout=True)
        assert info.checkout_pending and info.created and info.branch_created and not info.pooled
        # Registered on its branch at HEAD, but no file written yet.
        assert worktree_list(git_repo)[str(info.path)] == "feature/later"
        assert git(info.path, "rev-parse", "HEAD") == head_commit(git_repo)
        assert not (info.path / "README.md").exists()

        await deferred_wt.populate(info)

        fresh = await plain.ensure(git_repo, "feature/fresh")
        mine, theirs = snapshot(info.path), snapshot(fresh.path)
        mine["branch"] = theirs["branch"]
        assert not info.checkout_pending and mine == theirs and mine["status"] == ""
    finally:
        await deferred_wt.close()


async def test_deferred_checkout_of_a_taken_branch_fails_and_leaves_nothing(tmp_path: Path, git_repo: Path) -> None:
    wt = Worktrees(tmp_path / "worktrees")
    try:
        first = await wt.ensure(git_repo, "taken", defer_checkout=True)
        await wt.populate(first)
        before = worktree_list(git_repo)

        other = Worktrees(tmp_path / "other-root")
        try:
            with pytest.raises(FailedPrecondition, match="already checked out"):
                await other.ensure(git_repo, "taken", defer_checkout=True)
        finally:
            await other.close()

        assert worktree_list(git_repo) == before
        assert not (tmp_path / "other-root").exists() or not any((tmp_path / "other-root").rglob("taken"))
    finally:
        await wt.close()


async def test_a_claim_takes_the_short_path_and_needs_no_worktree_listing(
    pooled: Worktrees, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await warm(pooled, git_repo)
    import daemon.worktrees as worktrees_module

    def no_listing(*_args, **_kwargs):
        raise AssertionError("the claim listed worktrees")

    monkeypatch.setattr(worktrees_module, "list_worktrees", no_listing)
    info = await pooled.ensure(git_repo, "quick", defer_checkout=True)

    assert info.pooled and not info.checkout_pending
    assert git(info.path, "rev-parse", "--abbrev-ref", "HEAD") == "quick"
    assert git(info.path, "status", "--porcelain") == ""


async def test_the_pool_survives_an_unexpected_failure_of_its_refill(
    tmp_path: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import daemon.worktree_pool as pool_module

    real = pool_module._head_commit
    calls = []

    def failing_once(repository: Path) -> str:
        calls.append(repository)
        if len(calls) == 1:
            raise RuntimeError("disk trouble")
        return real(repository)

    monkeypatch.setattr(pool_module, "_head_commit", failing_once)
    wt = Worktrees(tmp_path / "w", pool_size=1, pool_refresh_seconds=3600)
    try:
        await warm(wt, git_repo)
        assert len(calls) >= 2
        assert (await wt.ensure(git_repo, "after-failure")).pooled
    finally:
        await wt.close()
