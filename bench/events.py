"""Events: agent stdout line → SSE client latency, with 1 and with 50 sessions streaming at once.

The stub agent stamps each line with the wall-clock time it wrote it; the SSE client
subtracts that from the time it read the event (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import time

import httpx
from httpx_sse import aconnect_sse

from bench.report import Report, Row
from bench.shared import SharedStack
from bench.stack import proc_rss_kib

__all__ = ["run_events", "run_listeners", "stream_round"]

SECTION = "Events (agent stdout line → SSE client)"


async def _stream(
    client: httpx.AsyncClient, sid: str, since: float, want: int, opened: asyncio.Event, latencies: list[float]
) -> None:
    got = 0
    async with aconnect_sse(client, "GET", f"/api/sessions/{sid}/events") as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"SSE {sid}: {source.response.status_code}")
        opened.set()
        async for sse in source.aiter_sse():
            if not sse.data:
                continue  # httpx-sse dispatches a keep-alive comment as an empty event
            now = time.time()
            data = sse.json()
            text = (data.get("content") or {}).get("text") or ""
            if not text.startswith("tick ") or " t=" not in text:
                continue
            stamped = float(text.rsplit("t=", 1)[1])
            if stamped < since:
                continue  # history of an earlier round
            latencies.append((now - stamped) * 1000)
            got += 1
            if got >= want:
                return


async def stream_round(shared: SharedStack, sids: list[str], count: int, every_ms: int) -> list[float]:
    """Each of `sids` emits `count` stamped lines, one every `every_ms`; the latency of each as read over SSE."""
    latencies: list[float] = []
    since = time.time()
    async with httpx.AsyncClient(
        base_url=shared.stack.controlplane.url,
        timeout=120,
        headers={"Authorization": f"Bearer {shared.stack.token}"},
        limits=httpx.Limits(max_connections=len(sids) + 10),
    ) as client:
        opened = [asyncio.Event() for _ in sids]
        tasks = [
            asyncio.create_task(_stream(client, sid, since, count, ev, latencies))
            for sid, ev in zip(sids, opened, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in opened)), 60)
        await asyncio.sleep(0.5)  # let every subscription reach the live tail before the agents write
        for sid in sids:
            r = await client.post(f"/api/sessions/{sid}/message", json={"content": f"emit {count} every {every_ms}"})
            if r.status_code != 200:
                raise RuntimeError(f"message to {sid}: {r.status_code} {r.text}")
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 180)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def run_events(report: Report, quick: bool, shared: SharedStack, sessions: int = 50) -> None:
    """Needs `sessions` running stub sessions in `shared`."""
    single = asyncio.run(stream_round(shared, shared.sessions[:1], 100 if quick else 300, 20))
    print(f"    1 session: {len(single)} events", flush=True)
    many = asyncio.run(stream_round(shared, shared.sessions[:sessions], 10 if quick else 20, 100))
    print(f"    {sessions} sessions: {len(many)} events", flush=True)
    report.add(SECTION, Row("1 session streaming", single, "ms"))
    report.add(SECTION, Row(f"{sessions} sessions streaming", many, "ms"))
    report.note(
        SECTION,
        "Latency from the stub agent writing a line (stamped with time.time()) to the SSE client "
        "reading it: daemon parse → event log → StreamEvents → control-plane ingest → database → SSE. "
        "1 session: 50 lines/s; 50 sessions: each 10 lines/s (500 lines/s in total). Each event is one "
        "sample; p99 is in the targets table. No baseline: this is the path itself.",
    )
    s1, s50 = single, many
    if s1 and s50:
        from bench.stats import percentile

        report.note(
            SECTION,
            f"p99: {percentile(s1, 99):.1f} ms with 1 session, {percentile(s50, 99):.1f} ms with {sessions} sessions.",
        )


async def _listen(
    host: str, port: int, token: str, sid: str, since: float, want: int, opened: asyncio.Event, latencies: list[float]
) -> None:
    """One SSE client on a bare asyncio stream, reading only the data lines it times.

    Not httpx-sse (as the other readers are): with a thousand clients on the harness's share of two
    cores, a full client per stream would make the harness, not the control plane, the bottleneck.
    """
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        writer.write(
            f"GET /api/sessions/{sid}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"SSE {sid}: {status!r}")
        opened.set()
        got = 0
        while got < want:
            line = await reader.readline()
            if not line:
                raise RuntimeError(f"SSE {sid}: the stream ended")
            # Chunk-size lines and other fields are skipped: each frame is one chunk, so a data line is whole.
            if not line.startswith(b"data:") or b'"tick ' not in line:
                continue
            now = time.time()
            stamp = line.split(b" t=", 1)[1]
            stamped = float(stamp[: stamp.index(b'"')])
            if stamped < since:
                continue
            latencies.append((now - stamped) * 1000)
            got += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _listeners_round(
    shared: SharedStack, sids: list[str], clients: int, count: int, every_ms: int
) -> tuple[list[float], float, float]:
    url = httpx.URL(shared.stack.controlplane.url)
    pid = shared.stack.controlplane.popen.pid
    before = proc_rss_kib(pid) / 1024
    latencies: list[float] = []
    since = time.time()
    opened = [asyncio.Event() for _ in range(clients)]
    tasks = [
        asyncio.create_task(
            _listen(
                url.host, url.port or 80, shared.stack.token, sids[i % len(sids)], since, count, opened[i], latencies
            )
        )
        for i in range(clients)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in opened)), 120)
        await asyncio.sleep(1.0)  # let every subscription reach the live tail before the agents write
        during = proc_rss_kib(pid) / 1024
        async with httpx.AsyncClient(
            base_url=str(url), timeout=120, headers={"Authorization": f"Bearer {shared.stack.token}"}
        ) as client:
            for sid in sids:
                r = await client.post(
                    f"/api/sessions/{sid}/message", json={"content": f"emit {count} every {every_ms}"}
                )
                if r.status_code != 200:
                    raise RuntimeError(f"message to {sid}: {r.status_code} {r.text}")
        await asyncio.wait_for(asyncio.gather(*tasks), 300)
        during = max(during, proc_rss_kib(pid) / 1024)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, before, during


LISTENERS = "SSE listeners (1,000 clients on one control plane)"


def run_listeners(report: Report, quick: bool, shared: SharedStack, sessions: int = 50) -> None:
    """1,000 SSE clients spread over `sessions` running stub sessions: latency and the control plane's RSS."""
    clients = 1000
    count, every = (5, 500) if quick else (10, 500)
    latencies, before, during = asyncio.run(_listeners_round(shared, shared.sessions[:sessions], clients, count, every))
    print(f"    {clients} listeners: {len(latencies)} deliveries, RSS {before:.0f} → {during:.0f} MiB", flush=True)
    report.add(LISTENERS, Row(f"{clients} clients over {sessions} sessions", latencies, "ms"))
    report.add(LISTENERS, Row("control-plane RSS before the clients connect", [before], "MiB"))
    report.add(
        LISTENERS,
        Row(
            f"control-plane RSS with {clients} clients streaming",
            [during],
            "MiB",
            baseline="control-plane RSS before the clients connect",
        ),
    )
    report.note(
        LISTENERS,
        f"{clients // sessions} clients on each of {sessions} sessions; each session's stub agent "
        f"writes {count} stamped lines, one every {every} ms ({sessions * 1000 // every} lines/s in all, "
        f"{clients * 1000 // every} deliveries/s). Each delivery is one sample: agent line → daemon → ingest → "
        "database → the control plane's fan-out → that client. The clients are bare asyncio streams in the "
        "harness process, on the same 2 cores.",
    )
