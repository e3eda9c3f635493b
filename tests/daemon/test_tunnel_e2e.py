"""The dial-out tunnel against a real daemon process and the real claude: the daemon connects to the
control plane's tunnel listener (TLS), and the control plane's daemon client calls it over that tunnel —
launch, follow-up message, the event stream, errors with their codes — without ever dialing the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from berth.daemon.v1 import daemon_pb2 as pb

from controlplane.daemons import DaemonCallError, DaemonClient, MachineTarget
from controlplane.tunnel import TunnelConnection, TunnelServer
from daemon.local_calls import LocalCalls
from daemon.tunnel import TunnelDialer, TunnelTarget
from tests.daemon.harness import provider_table, settings_for, turns
from tests.support.daemon_proc import DaemonProcess, start_daemon
from tests.support.git_repos import make_repo
from tests.support.tls import make_self_signed
from tests.support.waiting import poll

pytestmark = pytest.mark.timeout(180)

CREDENTIAL = "machine-credential-for-m-1"


class _Listener:
    """The control plane's tunnel listener, with the credentials it knows and the ones it was shown."""

    def __init__(self, server: TunnelServer, cert: Path) -> None:
        self.server = server
        self.cert = cert
        self.known = {CREDENTIAL: "m-1"}
        self.shown: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
async def listener(tmp_path: Path) -> AsyncIterator[_Listener]:
    cert, key = make_self_signed(tmp_path / "cp-tls")
    holder: list[_Listener] = []

    async def authenticate(credential: str) -> str | None:
        holder[0].shown.append(credential)
        return holder[0].known.get(credential)

    server = TunnelServer("127.0.0.1:0", authenticate, tls=(key.read_bytes(), cert.read_bytes()))
    holder.append(_Listener(server, cert))
    await server.start()
    try:
        yield holder[0]
    finally:
        await server.stop()


@pytest.fixture
async def dialing_daemon(tmp_path: Path, listener: _Listener, claude_provider) -> AsyncIterator[DaemonProcess]:
    """A daemon whose only listener is its unix socket (the tests never use it), dialing the listener."""
    credential_file = tmp_path / "credential"
    credential_file.write_text(CREDENTIAL + "\n")
    credential_file.chmod(0o600)
    config = {
        "dial_out": {
            "address": listener.address,
            "credential_file": str(credential_file),
            "ca_file": str(listener.cert),
        },
        "pool": {"size": 0},
        **provider_table(claude_provider),
    }
    proc = await asyncio.to_thread(start_daemon, tmp_path, config=config)
    try:
        yield proc
    finally:
        await asyncio.to_thread(proc.stop)


def tunneled_client(connection: TunnelConnection) -> DaemonClient:
    return DaemonClient(MachineTarget("m-1", "tunnel"), rpc_deadline=30, channel=connection.channel())


async def events_until(client: DaemonClient, sid: str, after: int, done) -> list[pb.Event]:
    seen: list[pb.Event] = []

    async def follow() -> None:
        async for event in client.stream_events(sid, after):
            seen.append(event)
            if done(seen):
                return

    await asyncio.wait_for(follow(), 90)
    return seen


async def launch(client: DaemonClient, repo: Path, sid: str, prompt: str) -> pb.LaunchSessionResponse:
    request = pb.LaunchSessionRequest(
        agent_session_id=sid,
        repository=str(repo),
        worktree_name=f"tunnel-{sid}",
        initial_prompt=prompt,
        session_settings=settings_for("claude_code"),
    )
    return await client.launch_session(request, 60)


async def test_a_daemon_that_dials_out_is_driven_over_its_tunnel(
    dialing_daemon: DaemonProcess, listener: _Listener, tmp_path: Path, model_server
) -> None:
    connection = await listener.server.wait_connected("m-1", timeout=30)
    client = tunneled_client(connection)

    info = await client.machine_info()
    assert info.hostname and info.claude_version

    # The daemon's own answers, codes and field names included, arrive as over a direct channel.
    with pytest.raises(DaemonCallError) as missing:
        await client.get_session("as-nope")
    assert missing.value.http_status == 404 and missing.value.code == "NOT_FOUND"

    repo = make_repo(tmp_path / "repo")
    ack = await launch(client, repo, "as-tunnel", "hello through the tunnel")
    assert ack.status == "ok", ack
    first = await events_until(client, "as-tunnel", 0, lambda evs: turns(evs) >= 1)
    texts = [e.content.text for e in first if e.role == "assistant" and e.content.type == "text"]
    assert texts == ["ok: hello through the tunnel"]
    assert [e.seq for e in first] == list(range(1, len(first) + 1))

    await client.send_message("as-tunnel", "and a second one")
    second = await events_until(client, "as-tunnel", first[-1].seq, lambda evs: turns(evs) >= 1)
    assert second[0].seq == first[-1].seq + 1
    assert any(e.content.text == "ok: and a second one" for e in second)

    session = await client.get_session("as-tunnel")
    assert session.status == "active" and session.provider_session_id

    # Served in the daemon's own process, not relayed to its unix socket: each call is one log line,
    # and its peer is the tunnel.
    served = [r for r in dialing_daemon.log_records() if r.get("method", "").endswith("/GetSession")]
    assert [r["peer"] for r in served] == ["tunnel", "tunnel"], served
    assert [r["code"] for r in served] == ["NOT_FOUND", "OK"]


async def test_a_cut_tunnel_is_dialed_again_and_the_stream_resumes_from_the_last_seq(
    dialing_daemon: DaemonProcess, listener: _Listener, tmp_path: Path, model_server
) -> None:
    first_connection = await listener.server.wait_connected("m-1", timeout=30)
    client = tunneled_client(first_connection)
    repo = make_repo(tmp_path / "repo")
    assert (await launch(client, repo, "as-cut", "before the cut")).status == "ok"
    before = await events_until(client, "as-cut", 0, lambda evs: turns(evs) >= 1)

    # A follower in the middle of the stream when the control plane drops the tunnel.
    follower = asyncio.create_task(events_until(client, "as-cut", before[-1].seq, lambda evs: False))
    await asyncio.sleep(0.2)
    first_connection.close("cut by the test")
    with pytest.raises(DaemonCallError) as cut:
        await follower
    assert cut.value.code == "UNAVAILABLE"

    connection = await listener.server.wait_connected("m-1", timeout=60, newer_than=first_connection)
    client = tunneled_client(connection)
    await client.send_message("as-cut", "after the cut")
    after = await events_until(client, "as-cut", before[-1].seq, lambda evs: turns(evs) >= 1)
    # Nothing lost, nothing twice: the numbering goes on from where the reader stopped.
    assert [e.seq for e in after] == list(range(before[-1].seq + 1, before[-1].seq + 1 + len(after)))
    assert any(e.content.text == "ok: after the cut" for e in after)


async def test_an_unknown_credential_is_refused_and_nothing_is_connected(listener: _Listener, tmp_path: Path) -> None:
    dialer = TunnelDialer(
        TunnelTarget(listener.address, "not-a-credential", ca=listener.cert.read_bytes()), LocalCalls([])
    )
    dialer.start()
    try:
        await poll(lambda: dialer.failures >= 1, timeout=30, what="the refused attempt")
        assert "UNAUTHENTICATED" in dialer.last_error
        assert listener.shown == ["not-a-credential"]
        assert listener.server.connection("m-1") is None and dialer.connections == 0
    finally:
        await dialer.close()


async def test_a_listener_certificate_from_another_ca_is_refused_before_any_credential_is_shown(
    listener: _Listener, tmp_path: Path
) -> None:
    other_ca, _ = make_self_signed(tmp_path / "other-ca")
    dialer = TunnelDialer(TunnelTarget(listener.address, CREDENTIAL, ca=other_ca.read_bytes()), LocalCalls([]))
    dialer.start()
    try:
        await poll(lambda: dialer.failures >= 1, timeout=30, what="the failed handshake")
        assert "UNAVAILABLE" in dialer.last_error
        assert listener.shown == [] and dialer.connections == 0
    finally:
        await dialer.close()


async def test_a_second_daemon_with_the_same_credential_is_refused_while_the_first_is_connected(
    dialing_daemon: DaemonProcess, listener: _Listener, tmp_path: Path
) -> None:
    first = await listener.server.wait_connected("m-1", timeout=30)
    twin = TunnelDialer(TunnelTarget(listener.address, CREDENTIAL, ca=listener.cert.read_bytes()), LocalCalls([]))
    twin.start()
    try:
        await poll(lambda: twin.failures >= 1, timeout=30, what="the twin's refused attempt")
        assert "ALREADY_EXISTS" in twin.last_error
        assert listener.server.connection("m-1") is first
        assert (await tunneled_client(first).machine_info()).hostname
    finally:
        await twin.close()


async def test_a_revoked_machine_loses_its_tunnel_and_cannot_connect_again(
    dialing_daemon: DaemonProcess, listener: _Listener
) -> None:
    connection = await listener.server.wait_connected("m-1", timeout=30)
    del listener.known[CREDENTIAL]
    listener.server.revoke("m-1")
    with pytest.raises(DaemonCallError) as gone:
        await tunneled_client(connection).machine_info()
    assert gone.value.code == "UNAVAILABLE" and "revoked" in gone.value.message
    shown = len(listener.shown)
    await poll(lambda: len(listener.shown) > shown, timeout=30, what="the daemon to dial again")
    assert listener.server.connection("m-1") is None
