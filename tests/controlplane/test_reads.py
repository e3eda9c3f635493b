"""The read paths (controlplane/reads.py): the same bytes the response models give, a stored message
count kept exact by ingest, import and delete, keyset and offset pages that agree, and the inline
SQLite reader's fallback when the file is busy."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select, text

from controlplane.db.engine import make_engine
from controlplane.db.models import AgentSession
from controlplane.db.raw_readers import SqliteReader
from controlplane.reads import SessionReads
from controlplane.schemas import MessageList, SessionDetail, SessionList
from tests.controlplane.helpers import wait_messages


async def _session_with_history(cp, address: str, fake) -> tuple[object, str, str]:
    """alice, a launched session with 6 agent events, and an imported session with 3 messages."""
    alice = await cp.owner("alice")
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/repo", "alice", m["id"])
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "hello ✓"})
    assert r.status_code == 200, r.text
    sid = r.json()["payload"]["agent_session_id"]
    for i in range(3):
        await fake.emit(sid, "assistant", f"reply {i} — ünïcode")
    await wait_messages(alice, sid, lambda ms: len(ms) == 6, what="6 messages")
    imported = await alice.post(
        "/api/v1/user-sessions/import-claude-session",
        json={
            "workspace_id": ws["id"],
            "claude_session_id": "0f9e0000-0000-4000-8000-0000000000aa",
            "messages": [
                {
                    "message_id": "u1",
                    "role": "user",
                    "content": {"type": "text", "text": "hi"},
                    "created_at": "2024-01-16T10:00:00.500000Z",
                    "metadata": {"cost": 1e-05, "nested": {"a": [1, 2.5]}},
                },
                {
                    "message_id": "a1",
                    "role": "assistant",
                    "content": {"type": "tool_use", "name": "Bash", "tool_use_id": "t1", "arguments": {"cmd": "ls"}},
                    "created_at": "2024-01-16T10:00:01Z",
                },
                {
                    "message_id": "r1",
                    "role": "user",
                    "content": {"type": "tool_result", "tool_use_id": "t1", "output": "a\nb", "is_error": False},
                    "created_at": "2024-01-16T10:00:02.000001Z",
                },
            ],
        },
    )
    assert imported.status_code == 200, imported.text
    return alice, sid, imported.json()["agent_session_id"]


async def test_reads_answer_the_bytes_the_response_models_would_give(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid, imported = await _session_with_history(cp, address, fake)
    await alice.patch(f"/api/sessions/{sid}", json={"data": {"x": 0.1, "list": [True, None, "é"]}})
    for path, model in (
        (f"/api/sessions/{sid}", SessionDetail),
        (f"/api/sessions/{imported}", SessionDetail),
        ("/api/sessions", SessionList),
        ("/api/sessions?status=active&limit=1", SessionList),
        (f"/api/sessions/{imported}/messages", MessageList),
        (f"/api/sessions/{sid}/messages?after_seq=2&limit=2", MessageList),
    ):
        r = await alice.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"] == "application/json"
        # What FastAPI's response-model serialization makes of the same values.
        assert r.content == model.model_validate_json(r.content).model_dump_json().encode(), path


async def test_the_raw_readers_read_what_the_async_engine_reads(cp, fake_daemon):
    fake, address = fake_daemon
    _alice, sid, imported = await _session_with_history(cp, address, fake)
    engine = make_engine(cp.config.database_url)
    raw, through_engine = SessionReads(engine), SessionReads(engine)
    await raw.open()
    await through_engine.close()  # no raw reader: every read goes through SQLAlchemy's engine
    try:
        assert (raw._sqlite or raw._asyncpg) is not None
        assert through_engine._sqlite is None and through_engine._asyncpg is None
        for reads in (raw, through_engine):
            assert await reads.detail("bob", sid) is None  # another owner's session is not found
        for call in (
            lambda r: r.detail("alice", sid),
            lambda r: r.detail("alice", imported),
            lambda r: r.page("alice", task_id=None, agent_id="CLAUDE_CODE", status=None, limit=50, offset=0),
            lambda r: r.page("alice", task_id=None, agent_id=None, status="active", limit=1, offset=0),
            lambda r: r.page("alice", task_id=None, agent_id=None, status=None, limit=1, offset=5),
            lambda r: r.messages("alice", imported, limit=10, offset=1, after_seq=None),
            lambda r: r.messages("alice", sid, limit=10, offset=2, after_seq=None),
            lambda r: r.messages("alice", sid, limit=10, offset=0, after_seq=3),
        ):
            assert await call(raw) == await call(through_engine)
    finally:
        await raw.close()
        await engine.dispose()


async def test_message_count_is_stored_and_kept_exact_by_ingest_import_and_delete(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid, imported = await _session_with_history(cp, address, fake)
    assert (await alice.get(f"/api/sessions/{sid}")).json()["message_count"] == 6
    assert (await alice.get(f"/api/sessions/{imported}")).json()["message_count"] == 3
    listed = {s["id"]: s["message_count"] for s in (await alice.get("/api/sessions")).json()["sessions"]}
    assert listed == {sid: 6, imported: 3}
    # The reads show the stored column: a row removed behind the API's back is not counted away.
    engine = make_engine(cp.config.database_url)
    try:
        async with engine.begin() as conn:
            stored = (
                await conn.execute(text("SELECT message_count FROM agent_sessions WHERE id = :i"), {"i": sid})
            ).scalar_one()
            await conn.execute(text("DELETE FROM messages WHERE agent_session_id = :i AND seq = 1"), {"i": sid})
        assert stored == 6
        assert (await alice.get(f"/api/sessions/{sid}")).json()["message_count"] == 6
        await fake.emit(sid, "assistant", "one more")
        await wait_messages(alice, sid, lambda ms: len(ms) == 6 and ms[-1]["seq"] == 7, what="seq 7")
        assert (await alice.get(f"/api/sessions/{sid}")).json()["message_count"] == 7
        assert (await alice.delete(f"/api/sessions/{sid}")).status_code == 204
        async with engine.connect() as conn:
            left = (
                await conn.execute(text("SELECT count(*) FROM messages WHERE agent_session_id = :i"), {"i": sid})
            ).scalar_one()
        assert left == 0
    finally:
        await engine.dispose()


async def test_keyset_and_offset_pages_walk_the_same_order(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid, _ = await _session_with_history(cp, address, fake)
    for i in range(20):
        await fake.emit(sid, "assistant", f"more {i}")
    everything = await wait_messages(alice, sid, lambda ms: len(ms) == 26, what="26 messages")
    by_offset: list[dict] = []
    while True:
        page = (await alice.get(f"/api/sessions/{sid}/messages", params={"limit": 7, "offset": len(by_offset)})).json()
        assert page["total"] == 26
        by_offset += page["messages"]
        if len(page["messages"]) < 7:
            break
    by_seq: list[dict] = []
    last = 0
    while True:
        page = (await alice.get(f"/api/sessions/{sid}/messages", params={"limit": 7, "after_seq": last})).json()
        assert page["total"] == 26 - len(by_seq)  # what is left after `last`
        if not page["messages"]:
            break
        by_seq += page["messages"]
        last = page["messages"][-1]["seq"]
    assert [m["seq"] for m in by_offset] == [m["seq"] for m in by_seq] == [m["seq"] for m in everything]
    assert [m["seq"] for m in by_seq] == list(range(1, 27))


async def test_a_busy_sqlite_file_sends_the_read_through_the_async_engine(cp, fake_daemon, monkeypatch):
    fake, address = fake_daemon
    alice, sid, _ = await _session_with_history(cp, address, fake)
    if not cp.config.database_url.startswith("sqlite"):
        pytest.skip("the inline reader is SQLite's")
    tried: list[int] = []

    def busy(self, queries):
        tried.append(len(queries))
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(SqliteReader, "read", busy)
    r = await alice.get(f"/api/sessions/{sid}")
    assert r.status_code == 200 and r.json()["id"] == sid and r.json()["message_count"] == 6
    listed = await alice.get("/api/sessions")
    assert listed.status_code == 200 and listed.json()["total"] == 2
    assert tried == [1, 1]  # detail: one query; list: the page with its count


def test_the_inline_reader_gives_up_quickly_on_a_file_an_exclusive_writer_holds(tmp_path):
    path = str(tmp_path / "held.sqlite3")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE agent_sessions (id TEXT)")
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("INSERT INTO agent_sessions VALUES ('s')")  # takes the lock and keeps it
        reader = SqliteReader(path, busy_timeout_ms=50)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                reader.read([(select(AgentSession.__table__.c.id), {})])
        finally:
            reader.close()
    finally:
        holder.close()
    reader = SqliteReader(path)
    try:
        assert reader.read([(select(AgentSession.__table__.c.id), {})]) == [[("s",)]]
    finally:
        reader.close()


def test_the_inline_reader_refuses_a_column_type_it_cannot_convert(tmp_path):
    from sqlalchemy import Column, LargeBinary, MetaData, Table

    path = tmp_path / "x.sqlite3"
    sqlite3.connect(path).close()
    table = Table("blobs", MetaData(), Column("b", LargeBinary))
    reader = SqliteReader(str(path))
    try:
        with pytest.raises(TypeError, match="cannot convert"):
            reader.read([(select(table.c.b), {})])
    finally:
        reader.close()
    reader.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        reader.read([(select(table.c.b), {})])


async def test_keyset_totals_stay_exact_when_the_stored_seqs_have_a_gap(cp, fake_daemon):
    fake, address = fake_daemon
    alice, sid, imported = await _session_with_history(cp, address, fake)
    # Contiguous seqs 1..6: the total after a seq is arithmetic on the stored count.
    for after, left in ((0, 6), (4, 2), (6, 0), (99, 0)):
        page = (await alice.get(f"/api/sessions/{sid}/messages", params={"after_seq": after})).json()
        assert page["total"] == left == len(page["messages"]), (after, page)
    # A gap (seq 3 gone, and counted away): five messages over a span of six, so the rows are counted.
    engine = make_engine(cp.config.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM messages WHERE agent_session_id = :i AND seq = 3"), {"i": sid})
            await conn.execute(
                text("UPDATE agent_sessions SET message_count = message_count - 1 WHERE id = :i"), {"i": sid}
            )
    finally:
        await engine.dispose()
    for after, left in ((0, 5), (2, 3), (3, 3), (5, 1)):
        page = (await alice.get(f"/api/sessions/{sid}/messages", params={"after_seq": after})).json()
        assert page["total"] == left == len(page["messages"]), (after, page)
    # An imported session's messages have no seq: none is after any seq.
    page = (await alice.get(f"/api/sessions/{imported}/messages", params={"after_seq": 0})).json()
    assert page["total"] == 0 and page["messages"] == []
