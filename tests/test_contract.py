"""The generated gRPC code in proto/ matches daemon.proto (run `make proto` when this fails)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from berth.daemon.v1 import daemon_pb2

PROTO_DIR = Path(__file__).resolve().parents[1] / "proto"


def _generate_module():
    spec = importlib.util.spec_from_file_location("proto_generate", PROTO_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_up_to_date_with_the_proto(tmp_path):
    generated = _generate_module().generate(tmp_path)

    assert generated, "protoc produced nothing"
    for fresh in generated:
        committed = PROTO_DIR / fresh.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `make proto`"
        assert committed.read_bytes() == fresh.read_bytes(), f"{committed} is stale: run `make proto`"


def test_contract_names_the_versioned_service_and_every_rpc():
    service = daemon_pb2.DESCRIPTOR.services_by_name["DaemonService"]

    assert service.full_name == "berth.daemon.v1.DaemonService"
    assert {m.name for m in service.methods} == {
        "LaunchSession",
        "SendMessage",
        "InterruptSession",
        "PauseSession",
        "ResumeSession",
        "StopSession",
        "GetSession",
        "ListSessions",
        "StreamEvents",
        "ImportTranscript",
        "RemoveWorktree",
        "GetMachineInfo",
        "ForgetSession",
        "ListWorktrees",
        "ListApprovals",
        "DecideApproval",
        "GetDiff",
        "Commit",
        "Merge",
        "Push",
    }
    assert service.methods_by_name["StreamEvents"].server_streaming
