"""Approvals: the agent's request → seen by an SSE client, and the decision POSTed → the agent goes on.

The stub agent (bench/stub_agent.py), told "ask N", sends N can_use_tool control requests one after
another, each stamped with the wall-clock time it wrote it; when the answer reaches it, it prints a line
stamped with the time it read the answer (the moment its tool would start). One SSE client follows the
session: it measures request-written → event-read, POSTs "allow" at once and measures POST-sent →
answer-read from the stub's next line (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import time

import httpx
from httpx_sse import aconnect_sse

from bench.report import Report, Row
from bench.shared import SharedStack
from bench.stats import percentile

__all__ = ["run_approvals"]

SECTION = "Approvals (agent request → SSE client; decision POST → agent)"


async def _round(shared: SharedStack, sid: str, count: int) -> tuple[list[float], list[float]]:
    seen: list[float] = []
    answered: list[float] = []
    posted: dict[int, float] = {}
    async with httpx.AsyncClient(
        base_url=shared.stack.controlplane.url, timeout=120, headers={"Authorization": f"Bearer {shared.stack.token}"}
    ) as client:
        opened = asyncio.Event()

        async def follow() -> None:
            async with aconnect_sse(client, "GET", f"/api/sessions/{sid}/events") as source:
                if source.response.status_code != 200:
                    raise RuntimeError(f"SSE {sid}: {source.response.status_code}")
                opened.set()
                async for sse in source.aiter_sse():
                    if not sse.data:
                        continue  # httpx-sse dispatches a keep-alive comment as an empty event
                    now = time.time()
                    data = sse.json()
                    content = data.get("content") or {}
                    if content.get("type") == "approval_request":
                        args = content.get("arguments") or {}
                        n, stamped = int(args["n"]), float(args["t"])
                        seen.append((now - stamped) * 1000)
                        posted[n] = time.time()
                        r = await client.post(
                            f"/api/sessions/{sid}/approvals/{data['metadata']['approval_id']}",
                            json={"decision": "allow"},
                        )
                        if r.status_code != 200:
                            raise RuntimeError(f"decision: {r.status_code} {r.text}")
                    text = content.get("text") or ""
                    if text.startswith("granted "):
                        _, n_text, t_text = text.split()
                        answered.append((float(t_text[2:]) - posted[int(n_text)]) * 1000)
                        if len(answered) >= count:
                            return

        task = asyncio.create_task(follow())
        await asyncio.wait_for(opened.wait(), 60)
        await asyncio.sleep(0.5)  # the subscription reaches the live tail before the agent asks
        r = await client.post(f"/api/sessions/{sid}/message", json={"content": f"ask {count}"})
        if r.status_code != 200:
            raise RuntimeError(f"message: {r.status_code} {r.text}")
        try:
            await asyncio.wait_for(task, 600)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return seen, answered


def run_approvals(report: Report, quick: bool, shared: SharedStack) -> None:
    """Needs one running stub session in `shared`."""
    count = 50 if quick else 250
    seen, answered = asyncio.run(_round(shared, shared.sessions[0], count))
    print(f"    {len(seen)} approvals", flush=True)
    report.add(SECTION, Row("request written → SSE client", seen, "ms"))
    report.add(SECTION, Row("decision POSTed → agent has it", answered, "ms"))
    report.note(
        SECTION,
        f"{count} approvals one after another on one session. Request: the stub writes a "
        "can_use_tool control request → daemon stores the approval, then its event → StreamEvents → "
        "control-plane ingest → database → SSE. Decision: POST → control plane → DecideApproval → the "
        "daemon writes the control_response to the agent's stdin → the stub reads it. "
        f"p99: {percentile(seen, 99):.1f} ms and {percentile(answered, 99):.1f} ms. No baseline: this is "
        "the path itself.",
    )
