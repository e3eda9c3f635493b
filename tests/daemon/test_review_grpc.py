"""GetDiff over gRPC: concurrent diffs of one session all answer (they share Berth's private index), and a
patch limit beyond what gRPC can carry is refused naming the field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from tests.daemon.harness import Harness, provider_table

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def harness(daemon_factory, claude_provider) -> Harness:
    return Harness(daemon_factory(config=provider_table(claude_provider)))


def test_concurrent_diffs_of_one_session_all_answer_the_same(harness, git_repo):
    ack = harness.launch(git_repo, worktree_name="diffs")
    sid, worktree = ack.session.agent_session_id, Path(ack.payload["worktree_path"])
    harness.started(ack)
    for i in range(20):
        (worktree / f"file-{i}.txt").write_text(f"content {i}\n")

    def diff(_: int) -> list[str]:
        answer = harness.stub.GetDiff(pb.GetDiffRequest(agent_session_id=sid, stat_only=True), timeout=60)
        return sorted(f.path for f in answer.files)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(diff, range(24)))
    assert all(r == sorted(f"file-{i}.txt" for i in range(20)) for r in results)


def test_a_patch_limit_beyond_what_grpc_carries_is_refused_naming_the_field(harness, git_repo):
    ack = harness.launch(git_repo, worktree_name="limit")
    with pytest.raises(grpc.RpcError) as err:
        harness.stub.GetDiff(
            pb.GetDiffRequest(agent_session_id=ack.session.agent_session_id, max_patch_bytes=64 * 1024 * 1024),
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("max_patch_bytes")
