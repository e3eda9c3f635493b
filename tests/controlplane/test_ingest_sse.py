"""Event ingest and SSE edge cases, with the daemon double: no gap and no duplicate across a control-plane
restart and a dropped daemon stream; SSE live delivery and Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import json

from tests.controlplane.fake_daemon import FakeDaemon, serve_fake_daemon
from tests.controlplane.helpers import poll, read_sse, wait_messages


async def _launch(cp, address: str, prompt: str = "hello"):
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": prompt})
    assert r.status_code == 200, r.text
    return alice, r.json()["payload"]["agent_session_id"]


def _seqs(messages: list[dict]) -> list[int]:
    return [m["seq"] for m in messages]


async def test_events_are_stored_once_without_gaps_across_controlplane_restart(controlplane_factory, fake_daemon):
    fake, address = fake_daemon
    cp1 = await controlplane_factory()
    alice, sid = await _launch(cp1, address)
    await wait_messages(alice, sid, lambda ms: len(ms) == 3, what="3 messages")
    await cp1.stop()
    # Events the daemon logs while the control plane is down.
    for i in range(5):
        await fake.emit(sid, "assistant", f"while down {i}")
    cp2 = await controlplane_factory()
    alice2 = cp2.client(alice.headers["authorization"].split()[1])
    msgs = await wait_messages(alice2, sid, lambda ms: len(ms) >= 8, what="8 messages after restart")
    await fake.emit(sid, "assistant", "after restart")
    msgs = await wait_messages(alice2, sid, lambda ms: len(ms) >= 9, what="9 messages")
    assert _seqs(msgs) == list(range(1, 10))
    assert msgs[-1]["content"]["text"] == "after restart"
    # The follower resumed from the stored seq: its second StreamEvents asked for after_seq=3.
    assert [r.after_seq for r in fake.called("StreamEvents")][-1] == 3
    s = (await alice2.get(f"/api/sessions/{sid}")).json()
    assert s["message_count"] == 9 and s["last_active"] is not None


async def test_follower_reconnects_after_the_daemon_restarts(controlplane_factory):
    fake = FakeDaemon()
    async with serve_fake_daemon(fake) as (_, address):
        cp = await controlplane_factory()
        alice, sid = await _launch(cp, address)
        await wait_messages(alice, sid, lambda ms: len(ms) == 3)
    # Same log, new server on a new socket; point the machine at it.
    async with serve_fake_daemon(fake) as (_, address2):
        machines = (await cp.admin.get("/api/v1/machines")).json()
        r = await cp.admin.patch(f"/api/v1/machines/{machines[0]['id']}", json={"address": address2})
        assert r.status_code == 200
        await fake.emit(sid, "assistant", "back again")
        msgs = await wait_messages(alice, sid, lambda ms: len(ms) == 4, timeout=30)
        assert _seqs(msgs) == [1, 2, 3, 4]


async def test_sse_streams_live_events_and_resumes_from_last_event_id(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid = await _launch(cp, address)
    await wait_messages(alice, sid, lambda ms: len(ms) == 3)

    async def send() -> None:
        r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "live one"})
        assert r.status_code == 200

    events = await read_sse(alice, f"/api/sessions/{sid}/events", 5, on_open=send)
    assert [i for i, _ in events] == [1, 2, 3, 4, 5]
    assert events[3][1]["role"] == "user" and events[3][1]["content"]["text"] == "live one"
    assert events[4][1]["content"]["text"] == "echo: live one"

    # Resume after seq 3: only 4 and 5, then a live 6 and 7.
    async def more() -> None:
        await fake.emit(sid, "assistant", "six")
        await fake.emit(sid, "assistant", "seven")

    resumed = await read_sse(alice, f"/api/sessions/{sid}/events", 4, headers={"Last-Event-ID": "3"}, on_open=more)
    assert [i for i, _ in resumed] == [4, 5, 6, 7]
    assert resumed[-1][1]["content"]["text"] == "seven"
    via_query = await read_sse(alice, f"/api/sessions/{sid}/events?after_seq=6", 1)
    assert [i for i, _ in via_query] == [7]


async def test_sse_sends_keepalive_comments_while_idle(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid = await _launch(cp, address)
    await wait_messages(alice, sid, lambda ms: len(ms) == 3)
    # The comments are the wire format itself (an SSE client library hides them), so read raw lines.
    comments: list[str] = []
    data: list[str] = []

    async def read() -> None:
        async with alice.stream("GET", f"/api/sessions/{sid}/events", headers={"Last-Event-ID": "3"}) as resp:
            assert resp.status_code == 200
            async for line in resp.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                    if line == ": keep-alive" and comments.count(line) == 1:
                        await fake.emit(sid, "assistant", "late")  # only once idle long enough for one
                elif line.startswith("data:"):
                    data.append(line)
                    return

    await asyncio.wait_for(read(), 30)
    assert comments[:2] == [": connected", ": keep-alive"]
    assert json.loads(data[0].removeprefix("data:"))["seq"] == 4
    assert json.loads(data[0].removeprefix("data:"))["content"]["text"] == "late"


async def test_many_sse_clients_each_get_every_event_in_order(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid = await _launch(cp, address)
    await wait_messages(alice, sid, lambda ms: len(ms) == 3)
    readers = [asyncio.create_task(read_sse(alice, f"/api/sessions/{sid}/events", 53)) for _ in range(4)]

    async def all_connected() -> bool:
        return await cp_subscribers(cp) >= 4

    await poll(all_connected, what="4 SSE clients")
    for i in range(50):
        await fake.emit(sid, "assistant", f"burst {i}")
    for task in readers:
        events = await task
        assert [i for i, _ in events] == list(range(1, 54))


async def cp_subscribers(cp) -> int:
    text = (await cp.admin.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("berth_cp_sse_clients "):
            return int(float(line.split()[1]))
    return 0


async def test_a_status_event_stored_after_a_newer_change_never_undoes_it(cp, fake_daemon):
    fake, address = fake_daemon
    fake.streams_flow.clear()  # the launch's "active" event waits in the daemon
    fake.status_events = False
    alice, sid = await _launch(cp, address)
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "paused"})
    assert r.status_code == 200 and r.json()["status"] == "paused", r.text
    fake.streams_flow.set()  # now ingest stores the older events

    async def stored_all():
        return (await alice.get(f"/api/sessions/{sid}")).json()["message_count"] == len(fake.events[sid])

    await poll(stored_all, what="the launch's events stored")
    assert (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "paused"
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})
    assert r.status_code == 200 and len(fake.called("ResumeSession")) == 1


async def test_status_events_update_session_status_and_pause_resume_call_daemon(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid = await _launch(cp, address)
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "paused", "data": {"notes": "review"}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused" and r.json()["data"]["notes"] == "review"
    assert len(fake.called("PauseSession")) == 1
    r = await alice.post(f"/api/sessions/{sid}/message", json={"content": "x"})
    assert r.status_code == 409
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert len(fake.called("ResumeSession")) == 1
    # The daemon ends the session by itself: the status event reaches the row.
    await fake.emit(sid, "system", "done", status="completed")

    async def completed():
        return (await alice.get(f"/api/sessions/{sid}")).json()["status"] == "completed"

    await poll(completed, what="status completed from the event")
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "paused"})
    assert r.status_code == 409
    # A session that ran can be resumed after it ended.
    r = await alice.patch(f"/api/sessions/{sid}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert len(fake.called("ResumeSession")) == 2
    assert "berth_cp_events_ingested_total" in (await alice.get("/metrics")).text
