"""Server reflection over the unix socket, through the descriptor-database client grpcurl's protocol uses."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.support import daemon_proc

# Fixtures from the shared daemon helpers.
daemon = daemon_proc.daemon

DAEMON_SERVICE = "berth.daemon.v1.DaemonService"


def test_reflection_lists_daemon_health_and_reflection_services(daemon):
    db = ProtoReflectionDescriptorDatabase(daemon.channel())
    services = set(db.get_services())
    assert services == {DAEMON_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


def test_reflection_describes_a_method_with_its_message_types(daemon):
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(daemon.channel()))
    service = pool.FindServiceByName(DAEMON_SERVICE)
    methods = {m.name for m in service.methods}
    assert {"LaunchSession", "StreamEvents", "GetMachineInfo", "ImportTranscript"} <= methods
    stream = service.methods_by_name["StreamEvents"]
    assert stream.server_streaming and not stream.client_streaming
    assert stream.input_type.full_name == "berth.daemon.v1.StreamEventsRequest"
    assert stream.output_type.full_name == "berth.daemon.v1.Event"
    info = pool.FindMessageTypeByName("berth.daemon.v1.MachineInfo")
    assert "sessions_by_status" in info.fields_by_name


def test_reflection_of_an_unknown_symbol_is_not_found(daemon):
    db = ProtoReflectionDescriptorDatabase(daemon.channel())
    with pytest.raises(KeyError):
        db.FindFileContainingSymbol("no.such.Symbol")


@pytest.mark.skipif(shutil.which("grpcurl") is None, reason="grpcurl is not installed")
def test_grpcurl_lists_and_calls_over_the_unix_socket(daemon):
    listed = subprocess.run(
        ["grpcurl", "-plaintext", "-unix", str(daemon.socket_path), "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert DAEMON_SERVICE in listed.stdout.split()
    health = subprocess.run(
        ["grpcurl", "-plaintext", "-unix", str(daemon.socket_path), "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "SERVING" in health.stdout
    described = subprocess.run(
        ["grpcurl", "-plaintext", "-unix", str(daemon.socket_path), "describe", f"{DAEMON_SERVICE}.StreamEvents"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "returns ( stream .berth.daemon.v1.Event )" in described.stdout


def test_reflection_answers_a_raw_list_services_stream(daemon):
    # grpcurl speaks exactly this: a bidi stream of ServerReflectionRequest.
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(daemon.channel())
    replies = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=20)
    )
    assert len(replies) == 1
    names = {s.name for s in replies[0].list_services_response.service}
    assert DAEMON_SERVICE in names


def test_reflection_resolves_a_method_symbol_to_its_file(daemon):
    # `grpcurl describe pkg.Service.Method` asks for the file containing the method symbol.
    db = ProtoReflectionDescriptorDatabase(daemon.channel())
    found = db.FindFileContainingSymbol(f"{DAEMON_SERVICE}.StreamEvents")
    assert found.name == "berth/daemon/v1/daemon.proto"
    assert any(s.name == "DaemonService" for s in found.service)
    fresh = ProtoReflectionDescriptorDatabase(daemon.channel())  # no client-side cache
    with pytest.raises(KeyError):
        fresh.FindFileContainingSymbol(f"{DAEMON_SERVICE}.NoSuchMethod")
