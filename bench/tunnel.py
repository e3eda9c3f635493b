"""Tunnel: one unary call (GetSession) over a daemon's dial-out tunnel against the same call over a
direct TLS channel to the same daemon, interleaved in one run.

The harness plays the control plane: it runs the real TunnelServer and uses the real DaemonClient on
both transports (controlplane/tunnel.py, controlplane/daemons.py); the daemon is the real one, with a
TLS TCP listener (the direct path) and a [dial_out] table pointing at the harness (the tunnel).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from berth.daemon.v1 import daemon_pb2 as pb

from bench.report import Report, Row
from bench.stack import STUB_AGENT, _spawn_daemon
from controlplane.daemons import DaemonClient, MachineTarget
from controlplane.tunnel import TunnelServer
from tests.support.tls import make_self_signed

__all__ = ["SECTION", "run_tunnel"]

SECTION = "Tunnel (unary call: dial-out tunnel vs direct channel)"
CREDENTIAL = "machine-bench-credential"
TOKEN = "bench-daemon-token"


async def _measure(work: Path, repo: Path, rounds: int) -> tuple[list[float], list[float]]:
    cert, key = make_self_signed(work / "tls")

    async def authenticate(credential: str) -> str | None:
        return "m-bench" if credential == CREDENTIAL else None

    server = TunnelServer("127.0.0.1:0", authenticate, tls=(key.read_bytes(), cert.read_bytes()))
    await server.start()
    credential_file = work / "credential"
    credential_file.write_text(CREDENTIAL + "\n")
    credential_file.chmod(0o600)
    config = {
        "listen": {"tcp": "127.0.0.1:0", "tls_cert": str(cert), "tls_key": str(key), "token": TOKEN},
        "dial_out": {
            "address": f"127.0.0.1:{server.port}",
            "credential_file": str(credential_file),
            "ca_file": str(cert),
        },
        "providers": {"claude_code": {"binary": str(STUB_AGENT), "args": [], "env": {}}},
        "pool": {"size": 0},
        "daemon": {"log_level": "INFO"},  # the TCP port it bound is logged at INFO
    }
    daemon = await asyncio.to_thread(_spawn_daemon, work / "daemon", config)
    direct = tunneled = None
    try:
        await server.wait_connected("m-bench", timeout=60)
        port = daemon.tcp_port
        if port is None:
            raise RuntimeError("the daemon did not log its TCP port")
        direct = DaemonClient(
            MachineTarget("m-bench", f"localhost:{port}", tls_ca=cert.read_text(), token=TOKEN), rpc_deadline=30
        )
        tunneled = DaemonClient(MachineTarget("m-bench", "tunnel"), rpc_deadline=30, channel=server.channel("m-bench"))
        sid = f"bench-{uuid.uuid4().hex[:8]}"
        settings = pb.SessionSettings()
        settings.code.mode = "agent"
        settings.code.default_provider = "claude_code"
        await direct.launch_session(
            pb.LaunchSessionRequest(
                agent_session_id=sid,
                repository=str(repo),
                worktree_name=f"tunnel-{sid}",
                session_settings=settings,
                owner="bench",
            ),
            120,
        )
        for client in (direct, tunneled):  # warm both paths (TLS, HTTP/2 windows)
            for _ in range(50):
                await client.get_session(sid)
        direct_ms: list[float] = []
        tunnel_ms: list[float] = []
        for _ in range(rounds):
            for client, samples in ((direct, direct_ms), (tunneled, tunnel_ms)):
                started = time.perf_counter()
                await client.get_session(sid)
                samples.append((time.perf_counter() - started) * 1000)
        await direct.stop_session(sid)
        await direct.remove_worktree(sid, "bench", force=True, delete_branch=True)  # leave the cached repo clean
        return direct_ms, tunnel_ms
    finally:
        for client in (direct, tunneled):
            if client is not None:
                await client.close()
        await server.stop()
        await asyncio.to_thread(daemon.stop)


def run_tunnel(report: Report, quick: bool, run_dir: Path, repo: Path) -> None:
    """GetSession p50 over the tunnel against a direct TLS channel to the same daemon, same run."""
    work = run_dir / "tunnel"
    work.mkdir(parents=True, exist_ok=True)
    direct, tunnel = asyncio.run(_measure(work, repo, 300 if quick else 2000))
    print(f"    direct {sorted(direct)[len(direct) // 2]:.2f} ms, tunnel {sorted(tunnel)[len(tunnel) // 2]:.2f} ms")
    base = "GetSession, direct TLS channel"
    report.add(SECTION, Row(base, direct, "ms"))
    report.add(SECTION, Row("GetSession, over the dial-out tunnel", tunnel, "ms", baseline=base))
    report.note(
        SECTION,
        "One daemon, two paths to it from one client process, calls interleaved: a TLS channel dialed to the "
        "daemon's TCP listener (with its token), and the TLS tunnel the daemon dialed out to the harness's "
        "TunnelServer (the call framed as a CallStart, served by the daemon's own handlers in its process, the "
        "answer and its status framed back as one frame). Each call is one sample.",
    )


EVENTS = "Events over the dial-out tunnel (agent stdout line → SSE client)"


def run_tunnel_events(report: Report, quick: bool, run_dir: Path, repo: Path, sessions: int = 50) -> None:
    """Event latency with `sessions` stub sessions streaming at once, their daemon reached only by its tunnel."""
    from bench.events import stream_round
    from bench.shared import SharedStack

    shared = SharedStack(run_dir, repo, dial_out=True)
    try:
        for _ in range(sessions):
            shared.launch()
        many = asyncio.run(stream_round(shared, shared.sessions, 10 if quick else 20, 100))
    finally:
        shared.close()
    print(f"    {sessions} sessions over the tunnel: {len(many)} events", flush=True)
    report.add(EVENTS, Row(f"{sessions} sessions streaming, over the tunnel", many, "ms"))
    report.note(
        EVENTS,
        "As the events section's 50-session row, with the daemon enrolled as a dial-out machine: the control "
        "plane follows each session's StreamEvents through the daemon's TLS tunnel instead of a dialed channel.",
    )
