"""A small keep-alive HTTP/1.1 load generator (asyncio streams), cheap enough not to be the bottleneck."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

__all__ = ["requests_per_second"]


async def _worker(host: str, port: int, request: bytes, stop_at: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            await writer.drain()
            status = await reader.readline()
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected answer: {status!r}")
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _run(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"GET {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "Connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode()
    counts = [0]
    start = time.monotonic()
    await asyncio.gather(
        *(_worker(parts.hostname, parts.port, request, start + seconds, counts) for _ in range(concurrency))
    )
    return counts[0] / (time.monotonic() - start)


def requests_per_second(url: str, headers: dict[str, str], seconds: float, concurrency: int = 4) -> float:
    """GET `url` from `concurrency` keep-alive connections for `seconds`; answered requests per second."""
    return asyncio.run(_run(url, headers, seconds, concurrency))
