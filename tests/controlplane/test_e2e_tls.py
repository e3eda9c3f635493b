"""The control plane reaches a daemon over TCP with TLS (the machine's CA) and the machine's token."""

from __future__ import annotations

import asyncio

from tests.controlplane.helpers import wait_messages
from tests.support.tls import make_self_signed

TOKEN = "daemon-token-for-cp-tests"


async def test_launch_over_tls_with_token_and_wrong_token_is_a_clear_502(
    cp, daemon_factory, claude_provider, git_repo, tmp_path
):
    cert, key = make_self_signed(tmp_path)
    d = daemon_factory(
        config={
            "listen": {"tcp": "127.0.0.1:0", "tls_cert": str(cert), "tls_key": str(key), "token": TOKEN},
            "providers": {"claude_code": claude_provider},
        }
    )
    assert d.tcp_port, d.log_text()[-2000:]
    alice = await cp.owner("alice")
    m = await cp.machine(f"localhost:{d.tcp_port}", "alice", tls_ca=cert.read_text(), token=TOKEN)
    ws = await cp.workspace(str(git_repo), "alice", m["id"])
    info = await alice.get(f"/api/v1/machines/{m['id']}/info")
    assert info.status_code == 200, info.text
    assert info.json()["daemon_version"]
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "over tls"})
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]
    await wait_messages(
        alice, sid, lambda ms: any("ok: over tls" in (x["content"].get("text") or "") for x in ms), timeout=90
    )

    r = await cp.admin.patch(f"/api/v1/machines/{m['id']}", json={"token": "wrong-token"})
    assert r.status_code == 200
    info = await alice.get(f"/api/v1/machines/{m['id']}/info")
    assert info.status_code == 502
    assert "UNAUTHENTICATED" in info.json()["detail"]
    assert (await alice.delete(f"/api/sessions/{sid}")).status_code == 502  # cannot stop it: nothing deleted
    assert (await alice.get(f"/api/sessions/{sid}")).status_code == 200
    await cp.admin.patch(f"/api/v1/machines/{m['id']}", json={"token": TOKEN})
    assert (await alice.delete(f"/api/sessions/{sid}")).status_code == 204


async def test_a_tcp_machine_without_a_ca_is_still_dialed_with_tls_and_its_token_never_goes_out_in_clear(cp):
    """No CA given: the system's CAs verify the daemon, so a plaintext listener sees only a TLS handshake."""
    received = bytearray()
    got_bytes = asyncio.Event()

    async def listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
                got_bytes.set()
        finally:
            writer.close()

    server = await asyncio.start_server(listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        alice = await cp.owner("alice")
        m = await cp.machine(f"127.0.0.1:{port}", "alice", token=TOKEN)
        info = await alice.get(f"/api/v1/machines/{m['id']}/info")
        assert info.status_code == 502, info.text
        await asyncio.wait_for(got_bytes.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert received[:1] == b"\x16"  # a TLS record: the handshake
    assert TOKEN.encode() not in received and b"authorization" not in received.lower()
