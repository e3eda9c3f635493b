"""Every bad launch and session request gets the right gRPC code naming the field,
and leaves nothing behind: no worktree, branch, session row or process."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from tests.daemon.harness import Harness, branches, provider_table, settings_for, worktree_dirs
from tests.support.agents import live_group_members

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def harness(daemon_factory, claude_provider, codex_provider) -> Harness:
    return Harness(daemon_factory(config=provider_table(claude_provider, codex_provider)))


def _agent_pids(harness: Harness) -> list[int]:
    """Live processes started by the daemon (its children and their groups)."""
    children = Path(f"/proc/{harness.proc.pid}/task/{harness.proc.pid}/children").read_text().split()
    return [pid for child in children for pid in live_group_members(int(child))]


def _assert_nothing_left(harness: Harness, repo: Path, branches_before: set[str]) -> None:
    assert worktree_dirs(harness.worktrees_root) == []
    assert branches(repo) == branches_before
    assert list(harness.stub.ListSessions(pb.ListSessionsRequest(), timeout=10).sessions) == []
    assert _agent_pids(harness) == []


def _launch_error(harness: Harness, **fields) -> grpc.RpcError:
    fields.setdefault("session_settings", settings_for("claude_code"))
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.LaunchSession(pb.LaunchSessionRequest(**fields), timeout=30)
    return err.value


BAD_NAMES = [
    "../escape",
    "a..b",
    "/abs/path",
    "with space",
    "ctrl\x01char",
    "tilde~",
    "caret^x",
    "colon:x",
    "ends.lock",
    "trailing/",
    ".hidden",
    "-leading-dash",
    "x" * 201,
    "a//b",
    "star*",
    "@",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n[:20]))
def test_invalid_worktree_name_is_invalid_argument_naming_the_field(harness, git_repo, name):
    before = branches(git_repo)

    err = _launch_error(harness, repository=str(git_repo), worktree_name=name, initial_prompt="hi")

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "worktree_name" in err.details()
    _assert_nothing_left(harness, git_repo, before)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"repository": ""}, "repository"),
        (
            {"session_settings": pb.SessionSettings(code=pb.CodeSettings(default_provider="gemini"))},
            "session_settings.code.default_provider",
        ),
        (
            {"session_settings": pb.SessionSettings(code=pb.CodeSettings(mode="autopilot"))},
            "session_settings.code.mode",
        ),
        (
            {
                "session_settings": pb.SessionSettings(
                    code=pb.CodeSettings(
                        default_provider="codex",
                        providers=pb.ProviderSettings(codex=pb.CodexSettings(thinking="extreme")),
                    )
                )
            },
            "session_settings.code.providers.codex.thinking",
        ),
        ({"agent_session_id": "../../etc/passwd"}, "agent_session_id"),
        ({"resume_session_id": "bad id with spaces"}, "resume_session_id"),
        ({"resume_session_id": "--dangerously-skip-permissions"}, "resume_session_id"),
        (
            {
                "session_settings": pb.SessionSettings(
                    code=pb.CodeSettings(
                        providers=pb.ProviderSettings(
                            claude_code=pb.ClaudeCodeSettings(model="--dangerously-skip-permissions")
                        )
                    )
                )
            },
            "session_settings.code.providers.claude_code.model",
        ),
        ({"base_ref": "--upload-pack=evil"}, "base_ref"),
        ({"base_ref": "no-such-ref"}, "base_ref"),
    ],
    ids=[
        "missing-repository",
        "unknown-provider",
        "unknown-mode",
        "unknown-thinking",
        "bad-session-id",
        "bad-resume-id",
        "option-as-resume-id",
        "option-as-model",
        "option-as-base-ref",
        "unknown-base-ref",
    ],
)
def test_bad_launch_fields_are_invalid_argument_naming_the_field(harness, git_repo, fields, field):
    before = branches(git_repo)
    request = {"repository": str(git_repo), "worktree_name": "bad-input", "initial_prompt": "hi", **fields}

    err = _launch_error(harness, **request)

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert field in err.details()
    _assert_nothing_left(harness, git_repo, before)


def test_missing_repository_is_not_found(harness, git_repo, tmp_path):
    missing = tmp_path / "nowhere"

    err = _launch_error(harness, repository=str(missing), worktree_name="x", initial_prompt="hi")

    assert err.code() == grpc.StatusCode.NOT_FOUND and str(missing) in err.details()
    assert worktree_dirs(harness.worktrees_root) == []


def test_missing_agent_binary_is_failed_precondition_naming_the_path(
    daemon_factory, claude_provider, git_repo, tmp_path
):
    missing = tmp_path / "bin" / "claude"
    table = provider_table(claude_provider)
    table["providers"]["claude_code"]["binary"] = str(missing)
    harness = Harness(daemon_factory(config=table))
    before = branches(git_repo)

    err = _launch_error(harness, repository=str(git_repo), worktree_name="no-binary", initial_prompt="hi")

    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and str(missing) in err.details()
    _assert_nothing_left(harness, git_repo, before)


def test_agent_that_cannot_start_leaves_nothing_behind(daemon_factory, claude_provider, git_repo, tmp_path):
    not_executable = tmp_path / "claude"
    not_executable.write_text("#!/nonexistent/interpreter\n")
    not_executable.chmod(0o755)
    table = provider_table(claude_provider)
    table["providers"]["claude_code"]["binary"] = str(not_executable)
    harness = Harness(daemon_factory(config=table))
    before = branches(git_repo)

    err = _launch_error(harness, repository=str(git_repo), worktree_name="cannot-start", initial_prompt="hi")

    assert err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL)
    _assert_nothing_left(harness, git_repo, before)


def test_over_capacity_is_resource_exhausted_and_leaves_nothing(daemon_factory, claude_provider, git_repo):
    config = provider_table(claude_provider)
    config["daemon"] = {"max_sessions": 1}
    harness = Harness(daemon_factory(config=config))
    harness.launch(git_repo, worktree_name="first")
    before = branches(git_repo)

    err = _launch_error(harness, repository=str(git_repo), worktree_name="second", initial_prompt="hi")

    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "second" not in branches(git_repo) and branches(git_repo) == before
    assert len(worktree_dirs(harness.worktrees_root)) == 1
    assert len(harness.stub.ListSessions(pb.ListSessionsRequest(), timeout=10).sessions) == 1


@pytest.mark.parametrize(
    ("call", "request_"),
    [
        ("GetSession", pb.SessionRequest(agent_session_id="as-unknown")),
        ("PauseSession", pb.SessionRequest(agent_session_id="as-unknown")),
        ("ResumeSession", pb.ResumeSessionRequest(agent_session_id="as-unknown")),
        ("StopSession", pb.StopSessionRequest(agent_session_id="as-unknown")),
        ("InterruptSession", pb.SessionRequest(agent_session_id="as-unknown")),
        ("SendMessage", pb.SendMessageRequest(agent_session_id="as-unknown", content="hello")),
    ],
)
def test_unknown_session_is_not_found(harness, call, request_):
    with pytest.raises(grpc.RpcError) as err:
        getattr(harness.stub, call)(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "as-unknown" in err.value.details()


def test_stream_events_of_unknown_session_is_not_found(harness):
    with pytest.raises(grpc.RpcError) as err:
        list(harness.stub.StreamEvents(pb.StreamEventsRequest(agent_session_id="as-unknown"), timeout=10))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_message_to_a_stopped_session_is_failed_precondition(harness, git_repo):
    sid = harness.launch(git_repo, worktree_name="stopped").session.agent_session_id
    harness.stub.StopSession(pb.StopSessionRequest(agent_session_id=sid), timeout=30)

    with pytest.raises(grpc.RpcError) as err:
        harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="anyone?"), timeout=10)

    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "completed" in err.value.details()


def test_empty_message_is_invalid_argument(harness, git_repo):
    sid = harness.launch(git_repo, worktree_name="empty-msg").session.agent_session_id
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.SendMessage(pb.SendMessageRequest(agent_session_id=sid, content="  "), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "content" in err.value.details()


def test_import_with_bad_fields_names_them_and_writes_nothing(harness, git_repo, claude_provider):
    good = pb.TranscriptMessage(role="user", content=pb.Content(type="text", text="hi"))
    cases = [
        (
            pb.ImportTranscriptRequest(
                provider_session_id="../x", messages=[good], repository=str(git_repo), worktree_name="imp"
            ),
            "provider_session_id",
        ),
        (
            pb.ImportTranscriptRequest(
                provider_session_id="3f1d9a52-5a3c-4c47-9d55-0e6f6f1e2b12",
                messages=[],
                repository=str(git_repo),
                worktree_name="imp",
            ),
            "messages",
        ),
        (
            pb.ImportTranscriptRequest(
                provider_session_id="3f1d9a52-5a3c-4c47-9d55-0e6f6f1e2b12",
                messages=[pb.TranscriptMessage(role="robot", content=pb.Content(type="text", text="x"))],
                repository=str(git_repo),
                worktree_name="imp",
            ),
            "messages[0].role",
        ),
        (
            pb.ImportTranscriptRequest(
                provider_session_id="3f1d9a52-5a3c-4c47-9d55-0e6f6f1e2b12", messages=[good], worktree_name="imp"
            ),
            "repository",
        ),
    ]
    before = branches(git_repo)
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            harness.stub.ImportTranscript(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        assert field in err.value.details()
    assert worktree_dirs(harness.worktrees_root) == [] and branches(git_repo) == before
    projects = Path(claude_provider.env["CLAUDE_CONFIG_DIR"]) / "projects"
    assert not projects.exists() or not any(projects.rglob("*.jsonl"))


def test_list_sessions_with_unknown_status_is_invalid_argument(harness):
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.ListSessions(pb.ListSessionsRequest(status="sleeping"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "status" in err.value.details()


def test_remove_worktree_outside_the_daemons_root_is_not_found(harness, git_repo):
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.RemoveWorktree(pb.RemoveWorktreeRequest(worktree_path=str(git_repo), force=True), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (git_repo / ".git").exists()


def test_no_process_left_after_failed_launches(harness, git_repo):
    for name in ("../a", "b..c"):
        _launch_error(harness, repository=str(git_repo), worktree_name=name)
    assert _agent_pids(harness) == []
    assert os.path.isdir(git_repo)
