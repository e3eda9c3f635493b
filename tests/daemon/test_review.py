"""daemon/review.py on real repositories: every kind of change in the diff, a snapshot that never writes
the worktree's index, a cut patch, and merges that change nothing on conflict."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import review
from daemon.errors import FailedPrecondition, InvalidArgument
from tests.support.git_repos import commit_file, git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "repo")
    commit_file(path, "keep.txt", "a\nb\nc\n")
    commit_file(path, "old-name.txt", "".join(f"line {i}\n" for i in range(40)))
    commit_file(path, "gone.txt", "bye\n")
    return path


def test_the_diff_names_added_modified_deleted_renamed_and_binary_files_untracked_included(repo):
    base = git(repo, "rev-parse", "HEAD")
    (repo / "keep.txt").write_text("a\nB\nc\nd\n")
    git(repo, "mv", "old-name.txt", "new-name.txt")
    (repo / "gone.txt").unlink()
    (repo / "fresh.txt").write_text("new\n")  # untracked
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 4)
    index_before = (repo / ".git" / "index").read_bytes()

    d = review.diff(repo, base)
    got = {f.path: (f.status, f.additions, f.deletions, f.old_path) for f in d.files}
    assert got == {
        "keep.txt": ("modified", 2, 1, None),
        "new-name.txt": ("renamed", 0, 0, "old-name.txt"),
        "gone.txt": ("deleted", 0, 1, None),
        "fresh.txt": ("added", 1, 0, None),
        "blob.bin": ("binary", 0, 0, None),
    }
    assert "+B" in d.patch and "GIT binary patch" in d.patch and not d.truncated
    assert (repo / ".git" / "index").read_bytes() == index_before  # a private copy of the index was used
    only = review.diff(repo, base, path="keep.txt")
    assert [f.path for f in only.files] == ["keep.txt"] and "fresh.txt" not in only.patch
    cut = review.diff(repo, base, max_patch_bytes=100)
    assert cut.truncated and len(cut.patch.encode()) <= 100
    assert review.diff(repo, base, stat_only=True).patch == ""


def test_commit_all_refuses_an_empty_commit_and_a_bad_author(repo):
    with pytest.raises(FailedPrecondition, match="nothing to commit"):
        review.commit_all(repo, "nothing")
    (repo / "x.txt").write_text("x")
    with pytest.raises(InvalidArgument) as err:
        review.commit_all(repo, "m", author="--amend")
    assert err.value.field == "author"
    sha = review.commit_all(repo, "add x", author="Ada <ada@example.com>")
    assert git(repo, "log", "-1", "--format=%H %an").split() == [sha, "Ada"]


def test_a_conflicting_merge_reports_the_paths_and_leaves_every_ref_and_file(repo):
    git(repo, "checkout", "-q", "-b", "topic")
    commit_file(repo, "keep.txt", "topic\n")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "keep.txt", "main\n")
    refs = git(repo, "for-each-ref")
    result = review.merge(repo, "topic", "main")
    assert result.conflicts == ["keep.txt"] and result.merged_commit == ""
    assert git(repo, "for-each-ref") == refs and git(repo, "status", "--porcelain") == ""
    with pytest.raises(FailedPrecondition) as err:
        review.merge(repo, "topic", "main", "fast-forward")
    assert err.value.field == "strategy"
    with pytest.raises(InvalidArgument):
        review.merge(repo, "topic", "--orphan")
