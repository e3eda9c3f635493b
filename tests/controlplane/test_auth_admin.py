"""Bearer tokens (hashed, owner-scoped, admin-only administration) and the admin CRUD of machines,
workspaces and tokens."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from controlplane.db.engine import make_engine, make_sessionmaker
from controlplane.db.models import Machine, Token


async def test_requests_without_or_with_a_wrong_token_get_401(cp):
    anon = cp.client(None)
    for method, path in [
        ("GET", "/api/sessions"),
        ("POST", "/api/sessions"),
        ("GET", "/api/v1/workspaces"),
        ("POST", "/api/v1/user-sessions/import-claude-session"),
        ("POST", "/api/v1/workspaces/ws-x/sessions"),
        ("GET", "/api/sessions/s/events"),
    ]:
        r = await anon.request(method, path, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    wrong = cp.client("berth_not-a-real-token")
    assert (await wrong.get("/api/sessions")).status_code == 401
    basic = cp.client(None)
    assert (await basic.get("/api/sessions", headers={"Authorization": "Basic abc"})).status_code == 401


async def test_tokens_are_stored_only_as_sha256_hashes(cp):
    r = await cp.admin.post("/api/v1/tokens", json={"owner": "carol", "name": "ci"})
    assert r.status_code == 201
    plain = r.json()["token"]
    engine = make_engine(cp.config.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            rows = (await db.execute(select(Token).where(Token.owner == "carol"))).scalars().all()
    finally:
        await engine.dispose()
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain not in (rows[0].token_hash, rows[0].name, rows[0].id)
    listed = (await cp.admin.get("/api/v1/tokens")).json()
    assert all("token" not in t for t in listed)
    carol = cp.client(plain)
    assert (await carol.get("/api/sessions")).status_code == 200


async def test_deleted_token_stops_working(cp):
    r = await cp.admin.post("/api/v1/tokens", json={"owner": "dave"})
    tok = r.json()
    dave = cp.client(tok["token"])
    assert (await dave.get("/api/sessions")).status_code == 200
    assert (await cp.admin.delete(f"/api/v1/tokens/{tok['id']}")).status_code == 204
    assert (await dave.get("/api/sessions")).status_code == 401
    assert (await cp.admin.delete(f"/api/v1/tokens/{tok['id']}")).status_code == 404


async def test_non_admin_tokens_cannot_administer(cp):
    alice = await cp.owner("alice")
    m = await cp.machine("unix:/tmp/x.sock", "alice")
    ws = await cp.workspace("/srv/r", "alice", m["id"])
    attempts = [
        ("POST", "/api/v1/machines", {"name": "n", "address": "unix:/tmp/y.sock"}),
        ("PATCH", f"/api/v1/machines/{m['id']}", {"name": "renamed"}),
        ("DELETE", f"/api/v1/machines/{m['id']}", None),
        ("POST", "/api/v1/workspaces", {"name": "n", "repository": "/srv/r"}),
        ("PATCH", f"/api/v1/workspaces/{ws['id']}", {"name": "renamed"}),
        ("DELETE", f"/api/v1/workspaces/{ws['id']}", None),
        ("POST", "/api/v1/tokens", {"owner": "alice", "is_admin": True}),
        ("GET", "/api/v1/tokens", None),
    ]
    for method, path, body in attempts:
        r = await alice.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
    # Nothing changed.
    assert (await alice.get(f"/api/v1/machines/{m['id']}")).json()["name"] == m["name"]
    assert (await alice.get(f"/api/v1/workspaces/{ws['id']}")).json()["name"] == ws["name"]


async def test_machine_crud_never_returns_the_daemon_token(cp):
    r = await cp.admin.post(
        "/api/v1/machines",
        json={
            "name": "laptop",
            "address": "devbox.local:7443",
            "token": "s3cret-daemon-token",
            "tls_ca": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
            "owner": "alice",
        },
    )
    assert r.status_code == 201, r.text
    m = r.json()
    assert "s3cret-daemon-token" not in r.text and m["has_token"] and m["has_tls_ca"]
    engine = make_engine(cp.config.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            stored = (await db.get(Machine, m["id"])).token
    finally:
        await engine.dispose()
    assert stored.startswith("fernet:") and "s3cret-daemon-token" not in stored  # encrypted at rest
    got = await cp.admin.get(f"/api/v1/machines/{m['id']}")
    assert "s3cret" not in got.text and got.json()["address"] == "devbox.local:7443"
    r = await cp.admin.patch(f"/api/v1/machines/{m['id']}", json={"name": "laptop2", "token": None})
    assert r.status_code == 200 and r.json()["name"] == "laptop2" and r.json()["has_token"] is False
    engine = make_engine(cp.config.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            assert (await db.get(Machine, m["id"])).token is None
    finally:
        await engine.dispose()
    assert (await cp.admin.delete(f"/api/v1/machines/{m['id']}")).status_code == 204
    assert (await cp.admin.get(f"/api/v1/machines/{m['id']}")).status_code == 404


async def test_workspace_crud_and_owner_visibility(cp):
    alice = await cp.owner("alice")
    bob = await cp.owner("bob")
    m = await cp.machine("unix:/tmp/a.sock", "alice")
    ws = await cp.workspace("https://example.com/repo.git", "alice", m["id"])
    assert ws["owner"] == "alice" and ws["default_machine_id"] == m["id"]
    assert [w["id"] for w in (await alice.get("/api/v1/workspaces")).json()] == [ws["id"]]
    assert (await bob.get("/api/v1/workspaces")).json() == []
    assert [w["id"] for w in (await cp.admin.get("/api/v1/workspaces")).json()] == [ws["id"]]
    r = await cp.admin.patch(f"/api/v1/workspaces/{ws['id']}", json={"base_ref": "main", "name": "renamed"})
    assert r.status_code == 200 and r.json()["base_ref"] == "main" and r.json()["name"] == "renamed"
    # A machine of another owner cannot be a workspace's default.
    bm = await cp.machine("unix:/tmp/b.sock", "bob")
    r = await cp.admin.patch(f"/api/v1/workspaces/{ws['id']}", json={"default_machine_id": bm["id"]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "default_machine_id"
    assert (await cp.admin.delete(f"/api/v1/workspaces/{ws['id']}")).status_code == 204
    assert (await alice.get(f"/api/v1/workspaces/{ws['id']}")).status_code == 404


async def test_openapi_describes_the_seed_contract(cp):
    spec = (await cp.client(None).get("/openapi.json")).json()
    paths = spec["paths"]
    assert "post" in paths["/api/v1/workspaces/{workspace_id}/sessions"]
    assert "post" in paths["/api/v1/user-sessions/import-claude-session"]
    assert {"get", "post"} <= set(paths["/api/sessions"])
    assert {"get", "patch", "delete"} <= set(paths["/api/sessions/{session_id}"])
    assert "post" in paths["/api/sessions/{session_id}/message"]
    schemas = spec["components"]["schemas"]
    assert set(schemas["LaunchWorkspaceSessionRequest"]["properties"]) >= {
        "machine_id",
        "user_session_id",
        "metadata",
        "initial_prompt",
        "worktree_name",
        "session_settings",
        "resume_session_id",
        "agent_session_id",
    }
    # The seed's fields, exactly named; the contract grows by addition only.
    assert set(schemas["ImportClaudeSessionResponse"]["properties"]) >= {
        "success",
        "user_session_id",
        "agent_session_id",
        "message_count",
        "error",
    }
    assert set(schemas["ImportableMessage"]["properties"]) == {
        "message_id",
        "role",
        "content",
        "created_at",
        "metadata",
    }
    assert set(schemas["Content"]["properties"]) == {
        "type",
        "text",
        "name",
        "tool_use_id",
        "arguments",
        "output",
        "is_error",
        "success",
        "message",
    }
    assert set(schemas["SendMessageResponse"]["properties"]) == {"message_id", "status", "timestamp"}
    assert {"id", "agent_id", "task_id", "status", "created_at", "last_active", "message_count", "data"} <= set(
        schemas["SessionDetail"]["properties"]
    )
    assert (await cp.client(None).get("/docs")).status_code == 200


async def test_health_and_metrics_need_no_token(cp):
    anon = cp.client(None)
    assert (await anon.get("/health")).json() == {"status": "ok"}
    text = (await anon.get("/metrics")).text
    assert "berth_cp_sessions" in text and "berth_cp_launch_seconds" in text
    r = await anon.get("/health", headers={"X-Request-ID": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
