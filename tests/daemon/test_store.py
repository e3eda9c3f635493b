"""The daemon's SQLite state store: sessions, gap-free event numbering, followers."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from daemon.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from daemon.store import SessionRecord, StateStore, StoredEvent

DEADLINE = 10.0


@pytest.fixture
def store(tmp_path: Path):
    s = StateStore(tmp_path / "state" / "daemon.db")
    yield s
    s.close()


def new_session(store: StateStore, sid: str = "s1", **kw) -> SessionRecord:
    rec = SessionRecord(agent_session_id=sid, workspace_id=kw.pop("workspace_id", "ws1"), provider="claude_code", **kw)
    store.insert_session(rec)
    return rec


def text(n: int) -> dict:
    return {"type": "text", "text": f"event {n}"}


async def collect(agen, count: int, *, first: asyncio.Event | None = None) -> list[StoredEvent]:
    """The first `count` events of `agen`; `first` is set on the first one. The follower then reads on
    without yielding until it waits for an append, so a task woken by `first` finds it waiting."""
    out = []
    async for ev in agen:
        out.append(ev)
        if first is not None:
            first.set()
        if len(out) == count:
            break
    return out


def test_creates_database_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "state.db"
    s = StateStore(path)
    s.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_session_round_trip_keeps_every_field(store: StateStore) -> None:
    rec = SessionRecord(
        agent_session_id="abc",
        workspace_id="ws",
        provider="codex",
        model="gpt-5",
        status="active",
        provider_session_id="thread-1",
        repository="/repo",
        worktree_path="/wt/x",
        branch="x",
        pid=1234,
        last_error="",
        settings={"thinking": "high", "initial_prompt": "hi"},
        metadata={"k": [1, 2]},
        worktree_created=True,
    )
    store.insert_session(rec)
    got = store.get_session("abc")
    assert got == rec
    assert got.created_at.endswith("Z") and got.updated_at == got.created_at
    assert got.last_seq == 0


def test_duplicate_session_is_already_exists(store: StateStore) -> None:
    new_session(store, "dup")
    with pytest.raises(AlreadyExists):
        new_session(store, "dup")


def test_invalid_status_is_refused(store: StateStore) -> None:
    with pytest.raises(InvalidArgument) as info:
        new_session(store, "bad", status="running")
    assert info.value.field == "status"
    assert store.get_session("bad") is None


def test_update_session_changes_fields_and_updated_at(store: StateStore) -> None:
    rec = new_session(store)
    updated = store.update_session("s1", status="paused", pid=0, metadata={"x": 1}, worktree_created=True)
    assert updated.status == "paused" and updated.metadata == {"x": 1} and updated.worktree_created
    assert updated.updated_at >= rec.updated_at
    assert updated.created_at == rec.created_at
    assert store.get_session("s1") == updated


def test_update_session_refuses_unknown_or_protected_fields_and_missing_sessions(store: StateStore) -> None:
    new_session(store)
    with pytest.raises(TypeError):
        store.update_session("s1", last_seq=5)
    with pytest.raises(TypeError):
        store.update_session("s1", nonsense=1)
    with pytest.raises(NotFound):
        store.update_session("missing", status="active")
    with pytest.raises(InvalidArgument):
        store.update_session("s1", status="bogus")


def test_list_sessions_filters_by_status_and_workspace(store: StateStore) -> None:
    new_session(store, "a", workspace_id="w1")
    new_session(store, "b", workspace_id="w2", status="active")
    new_session(store, "c", workspace_id="w1", status="active")
    assert [s.agent_session_id for s in store.list_sessions()] == ["a", "b", "c"]
    assert [s.agent_session_id for s in store.list_sessions(status="active")] == ["b", "c"]
    assert [s.agent_session_id for s in store.list_sessions(workspace_id="w1")] == ["a", "c"]
    assert [s.agent_session_id for s in store.list_sessions(status="active", workspace_id="w1")] == ["c"]


def test_append_event_numbers_from_one_and_bumps_last_seq(store: StateStore) -> None:
    new_session(store)
    e1 = store.append_event("s1", role="user", content=text(1))
    e2 = store.append_event("s1", role="assistant", content=text(2), metadata={"usage": {"in": 3}})
    e3 = store.append_event("s1", role="system", content={"type": "system", "text": "done"}, status="completed")
    assert [e1.seq, e2.seq, e3.seq] == [1, 2, 3]
    assert store.get_session("s1").last_seq == 3
    assert store.events_after("s1", 0) == [e1, e2, e3]
    assert store.events_after("s1", 1, limit=1) == [e2]
    assert store.events_after("s1", 0)[2].status == "completed"


def test_append_event_to_missing_session_is_not_found_and_stores_nothing(store: StateStore) -> None:
    with pytest.raises(NotFound):
        store.append_event("ghost", role="user", content=text(1))
    assert store.events_after("ghost", 0) == []


def test_sequence_numbers_are_per_session(store: StateStore) -> None:
    new_session(store, "a")
    new_session(store, "b")
    assert store.append_event("a", role="user", content=text(1)).seq == 1
    assert store.append_event("b", role="user", content=text(1)).seq == 1
    assert store.append_event("a", role="user", content=text(2)).seq == 2


async def test_concurrent_appends_from_many_tasks_get_contiguous_seq(store: StateStore) -> None:
    new_session(store)

    async def writer(w: int) -> list[int]:
        seqs = []
        for i in range(25):
            seqs.append(store.append_event("s1", role="assistant", content={"w": w, "i": i}).seq)
            await asyncio.sleep(0)  # yield so writers interleave
        return seqs

    results = await asyncio.gather(*(writer(w) for w in range(20)))
    all_seqs = sorted(s for r in results for s in r)
    assert all_seqs == list(range(1, 501))
    stored = store.events_after("s1", 0, limit=10_000)
    assert [e.seq for e in stored] == list(range(1, 501))
    # Each writer's own events keep their order.
    for w in range(20):
        assert [e.content["i"] for e in stored if e.content["w"] == w] == list(range(25))


def test_appends_from_threads_get_contiguous_seq(store: StateStore) -> None:
    new_session(store)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(50):
                store.append_event("s1", role="assistant", content=text(0))
        except (FailedPrecondition, NotFound, sqlite3.Error) as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [e.seq for e in store.events_after("s1", 0)] == list(range(1, 201))


async def test_follow_yields_history_then_live_events_without_gaps_or_duplicates(store: StateStore) -> None:
    new_session(store)
    for i in range(1, 4):
        store.append_event("s1", role="assistant", content=text(i))
    got: list[StoredEvent] = []
    history_seen = asyncio.Event()

    async def follower() -> None:
        async for ev in store.follow("s1", 0):
            got.append(ev)
            if ev.seq == 3:
                history_seen.set()
            if ev.seq == 10:
                return

    task = asyncio.create_task(follower())
    await asyncio.wait_for(history_seen.wait(), DEADLINE)
    for i in range(4, 11):
        store.append_event("s1", role="assistant", content=text(i))
        if i % 2:
            await asyncio.sleep(0)
    await asyncio.wait_for(task, DEADLINE)
    assert [e.seq for e in got] == list(range(1, 11))
    assert [e.content["text"] for e in got] == [f"event {i}" for i in range(1, 11)]


async def test_follow_from_after_seq_starts_at_the_next_event(store: StateStore) -> None:
    new_session(store)
    for i in range(1, 6):
        store.append_event("s1", role="assistant", content=text(i))
    got = await asyncio.wait_for(collect(store.follow("s1", 3), 2), DEADLINE)
    assert [e.seq for e in got] == [4, 5]


async def test_follow_waiting_at_the_end_receives_the_next_append(store: StateStore) -> None:
    new_session(store)
    store.append_event("s1", role="user", content=text(1))
    waiting = asyncio.Event()
    task = asyncio.create_task(collect(store.follow("s1", 0), 2, first=waiting))
    await asyncio.wait_for(waiting.wait(), DEADLINE)  # it has seq 1 and waits at the end
    assert not task.done()
    store.append_event("s1", role="assistant", content=text(2))
    got = await asyncio.wait_for(task, DEADLINE)
    assert [e.seq for e in got] == [1, 2]


async def test_follow_history_only_ends_after_stored_events(store: StateStore) -> None:
    new_session(store)
    for i in range(1, 4):
        store.append_event("s1", role="assistant", content=text(i))
    got = [e async for e in store.follow("s1", 1, history_only=True)]
    assert [e.seq for e in got] == [2, 3]


async def test_follow_reads_long_history_in_batches(store: StateStore) -> None:
    new_session(store)
    for i in range(2500):
        store.append_event("s1", role="assistant", content=text(i))
    got = [e.seq async for e in store.follow("s1", 0, history_only=True)]
    assert got == list(range(1, 2501))


async def test_follow_unknown_session_is_not_found(store: StateStore) -> None:
    with pytest.raises(NotFound):
        await collect(store.follow("nope", 0), 1)


async def test_many_followers_all_see_every_event(store: StateStore) -> None:
    new_session(store)
    tasks = [asyncio.create_task(collect(store.follow("s1", 0), 20)) for _ in range(5)]
    for i in range(20):
        store.append_event("s1", role="assistant", content=text(i))
        await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
    for got in results:
        assert [e.seq for e in got] == list(range(1, 21))


async def test_follow_wakes_on_append_from_another_thread(store: StateStore) -> None:
    new_session(store)
    store.append_event("s1", role="user", content=text(0))
    waiting = asyncio.Event()
    task = asyncio.create_task(collect(store.follow("s1", 0), 4, first=waiting))
    await asyncio.wait_for(waiting.wait(), DEADLINE)
    await asyncio.to_thread(lambda: [store.append_event("s1", role="assistant", content=text(i)) for i in range(3)])
    got = await asyncio.wait_for(task, DEADLINE)
    assert [e.seq for e in got] == [1, 2, 3, 4]


async def test_delete_session_removes_events_and_ends_followers(store: StateStore) -> None:
    new_session(store)
    store.append_event("s1", role="user", content=text(1))
    got: list[int] = []

    waiting = asyncio.Event()

    async def follower() -> None:
        async for ev in store.follow("s1", 0):
            got.append(ev.seq)
            waiting.set()

    task = asyncio.create_task(follower())
    await asyncio.wait_for(waiting.wait(), DEADLINE)  # it has seq 1 and waits at the end
    store.delete_session("s1")
    await asyncio.wait_for(task, DEADLINE)
    assert got == [1]
    assert store.get_session("s1") is None
    assert store.events_after("s1", 0) == []
    # A new session with the same id starts numbering afresh.
    new_session(store)
    assert store.append_event("s1", role="user", content=text(1)).seq == 1


async def test_close_ends_followers_and_is_idempotent(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "db.sqlite")
    new_session(s)
    s.append_event("s1", role="user", content=text(1))
    waiting = asyncio.Event()
    task = asyncio.create_task(collect(s.follow("s1", 0), 5, first=waiting))
    await asyncio.wait_for(waiting.wait(), DEADLINE)
    s.close()
    s.close()
    assert [e.seq for e in await asyncio.wait_for(task, DEADLINE)] == [1]
    with pytest.raises(FailedPrecondition):
        s.get_session("s1")
    with pytest.raises(FailedPrecondition):
        s.append_event("s1", role="user", content=text(1))


def test_reopening_keeps_sessions_and_events_and_seq_continues(tmp_path: Path) -> None:
    path = tmp_path / "daemon.db"
    s = StateStore(path)
    new_session(s, settings={"thinking": "low"})
    for i in range(1, 4):
        s.append_event("s1", role="assistant", content=text(i))
    s.close()

    s2 = StateStore(path)
    try:
        rec = s2.get_session("s1")
        assert rec.last_seq == 3 and rec.settings == {"thinking": "low"}
        assert [e.seq for e in s2.events_after("s1", 0)] == [1, 2, 3]
        assert s2.append_event("s1", role="user", content=text(4)).seq == 4
    finally:
        s2.close()


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon.db"
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(FailedPrecondition, match="schema version 99"):
        StateStore(path)


def test_the_state_database_is_private_to_its_owner(tmp_path: Path) -> None:
    db = tmp_path / "new-state" / "daemon.sqlite3"
    store = StateStore(db)
    try:
        store.insert_session(SessionRecord(agent_session_id="p1"))
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        for path in db.parent.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        store.close()


def test_a_version_1_database_gains_owners_and_its_provider_ids_stay_its_users(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite3"
    store = StateStore(db)
    store.insert_session(
        SessionRecord(agent_session_id="old", provider_session_id="5e55a000-0000-4000-8000-0000000000aa")
    )
    store.close()
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TABLE provider_sessions; DROP TABLE pending_messages; DROP INDEX sessions_worktree;"
        "ALTER TABLE sessions DROP COLUMN owner; PRAGMA user_version=1;"
    )
    conn.close()
    store = StateStore(db)
    try:
        assert store.get_session("old").owner == ""
        assert store.provider_session_owner("5e55a000-0000-4000-8000-0000000000aa") == ""
    finally:
        store.close()


def test_a_pending_message_is_kept_with_its_event_until_its_turn_ends(store: StateStore) -> None:
    store.insert_session(SessionRecord(agent_session_id="pm"))
    first = store.append_event("pm", role="user", content={"type": "text", "text": "one"}, pending_message_id="m1")
    store.append_event("pm", role="user", content={"type": "text", "text": "two"}, pending_message_id="m2")
    assert [(p.message_id, p.content, p.written) for p in store.pending_messages("pm")] == [
        ("m1", "one", False),
        ("m2", "two", False),
    ]
    store.mark_written("pm", first.seq)
    store.finish_written("pm")
    assert [p.message_id for p in store.pending_messages("pm")] == ["m2"]
