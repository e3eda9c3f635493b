"""Repositories a launch names, against real git: local paths resolve to their main repository, URLs clone once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.errors import FailedPrecondition, InvalidArgument, NotFound
from daemon.repositories import Repositories, is_clone_url
from daemon.worktrees import Worktrees
from tests.support.git_repos import head_commit, make_repo


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repos" / "repo", commits=2)


@pytest.fixture
def repositories(tmp_path: Path) -> Repositories:
    return Repositories(tmp_path / "clones")


@pytest.fixture
async def worktrees(tmp_path: Path):
    wt = Worktrees(tmp_path / "worktrees")
    yield wt
    await wt.close()


async def test_resolve_repository_accepts_local_repo_and_subpaths_of_worktrees(
    repositories: Repositories, worktrees: Worktrees, git_repo: Path
) -> None:
    assert await repositories.resolve(str(git_repo)) == git_repo.resolve()
    info = await worktrees.ensure(git_repo, "linked")
    # A linked worktree resolves to its main repository.
    assert await repositories.resolve(str(info.path)) == git_repo.resolve()


async def test_resolve_repository_errors_name_the_problem(repositories: Repositories, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        await repositories.resolve("")
    assert info.value.field == "repository"
    with pytest.raises(InvalidArgument):
        await repositories.resolve("relative/path")
    with pytest.raises(NotFound, match="does-not-exist"):
        await repositories.resolve(str(tmp_path / "does-not-exist"))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(FailedPrecondition, match="not a git repository"):
        await repositories.resolve(str(plain))


def test_clone_url_detection() -> None:
    for url in ["https://github.com/a/b.git", "ssh://git@host/x", "git@github.com:a/b.git", "file:///tmp/r"]:
        assert is_clone_url(url), url
    for path in ["/tmp/repo", "~/repo", "relative", "C:/x"]:
        assert not is_clone_url(path), path


async def test_clone_url_is_cloned_once_for_concurrent_callers(
    repositories: Repositories, worktrees: Worktrees, git_repo: Path
) -> None:
    url = f"file://{git_repo}"
    paths = await asyncio.gather(*(repositories.resolve(url) for _ in range(5)))
    assert len(set(paths)) == 1
    clone = paths[0]
    assert clone.parent == repositories.repos_root.resolve()
    assert head_commit(clone) == head_commit(git_repo)
    assert [p.name for p in repositories.repos_root.iterdir()] == [clone.name]
    # Later calls reuse the clone instead of cloning again.
    marker = clone / "local-only.txt"
    marker.write_text("x")
    assert await repositories.resolve(url) == clone
    assert marker.exists()
    info = await worktrees.ensure(clone, "on-clone")
    assert info.repository == clone


async def test_failed_clone_is_not_found_and_leaves_nothing(repositories: Repositories, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="cannot be cloned"):
        await repositories.resolve(f"file://{tmp_path}/missing-repo")
    assert not repositories.repos_root.exists() or list(repositories.repos_root.iterdir()) == []
