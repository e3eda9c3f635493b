"""Worktree-name and session-id validation, cross-checked against real git."""

from __future__ import annotations

import subprocess

import pytest

from daemon.errors import InvalidArgument
from daemon.validation import validate_session_id, validate_worktree_name

GOOD_NAMES = [
    "feature",
    "feature/login",
    "a/b/c",
    "fix-123",
    "user@host",
    "v1.2.3",
    "x_y",
    "héllo",
    "日本語",
    "a.b",
    "emoji-🚀",
    "trailing-dash-",
    "refs/heads/x",
    "@foo",
    "a@b",
    "x" * 200,
]

BAD_NAMES = [
    "",
    "-leading-dash",
    "/abs/path",
    "/",
    "trailing/",
    "trailing.",
    "double..dot",
    "..",
    "a/../b",
    "a//b",
    "has space",
    "tab\there",
    "nl\nx",
    "del\x7fx",
    "tilde~1",
    "caret^",
    "colon:x",
    "question?",
    "star*",
    "bracket[",
    "back\\slash",
    "at@{brace",
    "@{-1}",
    ".hidden",
    "a/.hidden",
    "x.lock",
    "a.lock/b",
    "a/b.lock",
    "HEAD",
]

# Names git itself accepts but we refuse on purpose.
STRICTER_THAN_GIT = ["@", "x" * 201, "é" * 101]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_valid_branch_names_are_accepted(name: str) -> None:
    validate_worktree_name(name)


@pytest.mark.parametrize("name", BAD_NAMES + STRICTER_THAN_GIT)
def test_invalid_branch_names_raise_invalid_argument_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_worktree_name(name, field="worktree_name")
    assert info.value.field == "worktree_name"
    assert str(info.value).startswith("worktree_name: ")


def test_custom_field_name_is_reported() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_worktree_name("bad name", field="launch.worktree_name")
    assert info.value.field == "launch.worktree_name"


def test_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        validate_worktree_name(None)  # type: ignore[arg-type]


def _git_accepts(name: str, cwd) -> bool:
    result = subprocess.run(["git", "check-ref-format", "--branch", name], check=False, cwd=cwd, capture_output=True)
    return result.returncode == 0


def test_names_agree_with_git_check_ref_format(tmp_path) -> None:
    """Every name in the lists gets the same verdict from real git (except our stricter ones)."""
    disagreements = []
    for name in GOOD_NAMES + BAD_NAMES:
        ours = True
        try:
            validate_worktree_name(name)
        except InvalidArgument:
            ours = False
        if ours != _git_accepts(name, tmp_path):
            disagreements.append((name, ours))
    assert disagreements == []
    for name in STRICTER_THAN_GIT:
        assert _git_accepts(name, tmp_path), name


@pytest.mark.parametrize("value", ["abc", "A-b_c.d", "0" * 128, "550e8400-e29b-41d4-a716-446655440000"])
def test_valid_session_ids_are_accepted(value: str) -> None:
    validate_session_id(value, "provider_session_id")


@pytest.mark.parametrize(
    "value", ["", ".hidden", "..", "a/b", "../etc", "a b", "x" * 129, "é", "a\x00b", "a\\b", "a:b"]
)
def test_invalid_session_ids_raise_invalid_argument_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_session_id(value, "provider_session_id")
    assert info.value.field == "provider_session_id"
