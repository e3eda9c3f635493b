"""The OpenAPI document says what the app does: the bearer scheme on every protected operation (and
the app answers 401 there), 403 exactly where owners are refused, error bodies, valid examples of the
seed documents, and the launch payload's keys."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter

from controlplane.api.openapi_doc import ADMIN_OPERATIONS, DAEMON_OPERATIONS, EXAMPLES, PUBLIC_PATHS
from controlplane.schemas import (
    ImportClaudeSessionRequest,
    ImportClaudeSessionResponse,
    LaunchWorkspaceSessionRequest,
    LaunchWorkspaceSessionResponse,
    MessageList,
    SendMessageRequest,
    SendMessageResponse,
    SessionCreate,
    SessionCreated,
    SessionDetail,
    SessionList,
    SessionUpdate,
)

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

MODELS = {
    ("post", "/api/v1/user-sessions/import-claude-session"): (ImportClaudeSessionRequest, ImportClaudeSessionResponse),
    ("post", "/api/v1/workspaces/{workspace_id}/sessions"): (
        LaunchWorkspaceSessionRequest,
        LaunchWorkspaceSessionResponse,
    ),
    ("get", "/api/sessions"): (None, SessionList),
    ("post", "/api/sessions"): (SessionCreate, SessionCreated),
    ("get", "/api/sessions/{session_id}"): (None, SessionDetail),
    ("patch", "/api/sessions/{session_id}"): (SessionUpdate, SessionDetail),
    ("post", "/api/sessions/{session_id}/message"): (SendMessageRequest, SendMessageResponse),
    ("get", "/api/sessions/{session_id}/messages"): (None, MessageList),
}


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "not-an-id", path)


async def test_every_protected_operation_names_the_bearer_scheme_and_answers_401_without_a_token(cp):
    anonymous = cp.client(None)
    spec = (await anonymous.get("/openapi.json")).json()

    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for method, path, op in _operations(spec):
        if path in PUBLIC_PATHS:
            assert "security" not in op
            continue
        assert op["security"] == [{"bearerAuth": []}], (method, path)
        assert op["responses"]["401"]["content"]["application/json"]["example"] == {"detail": "invalid token"}
        r = await anonymous.request(method.upper(), _concrete(path))
        assert r.status_code == 401, (method, path, r.status_code)


async def test_403_is_documented_exactly_where_an_owner_token_is_refused(cp):
    alice = await cp.owner("alice")
    spec = (await alice.get("/openapi.json")).json()

    for method, path, op in _operations(spec):
        if path in PUBLIC_PATHS or path.endswith("/events"):
            continue
        body = {} if "requestBody" in op else None
        r = await alice.request(method.upper(), _concrete(path), json=body)
        assert (r.status_code == 403) == ((method, path) in ADMIN_OPERATIONS), (method, path, r.status_code)
        assert ("403" in op["responses"]) == ((method, path) in ADMIN_OPERATIONS), (method, path)


async def test_errors_carry_their_bodies_and_daemon_operations_list_the_daemons_failures(cp):
    spec = (await cp.client(None).get("/openapi.json")).json()

    assert {(m, p) for m, p, _ in _operations(spec)} >= DAEMON_OPERATIONS | ADMIN_OPERATIONS
    for method, path, op in _operations(spec):
        responses = op["responses"]
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                assert "schema" in response["content"]["application/json"], (method, path, code)
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in op:
            assert {"413", "422"} <= set(responses), (method, path)
        if (method, path) in DAEMON_OPERATIONS:
            assert {"409", "429", "502", "503", "504"} <= set(responses), (method, path)
    launch = spec["paths"]["/api/v1/workspaces/{workspace_id}/sessions"]["post"]
    assert launch["responses"]["502"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LaunchWorkspaceSessionResponse"
    }


async def test_the_launch_payload_is_a_documented_open_object(cp):
    spec = (await cp.client(None).get("/openapi.json")).json()

    payload = spec["components"]["schemas"]["LaunchWorkspaceSessionResponse"]["properties"]["payload"]
    assert payload["additionalProperties"] is True
    assert {
        "agent_session_id",
        "user_session_id",
        "workspace_id",
        "machine_id",
        "worktree_path",
        "branch",
        "provider",
        "provider_session_id",
        "error",
    } <= set(payload["properties"])


async def test_seed_examples_are_in_the_document_and_valid_for_their_models(cp):
    spec = (await cp.client(None).get("/openapi.json")).json()

    assert set(MODELS) == set(EXAMPLES)
    for (method, path), (request_model, response_model) in MODELS.items():
        op = spec["paths"][path][method]
        examples = EXAMPLES[(method, path)]
        if request_model is not None:
            example = op["requestBody"]["content"]["application/json"]["example"]
            assert example == examples["request"]
            request_model.model_validate(example)
        code = next(c for c in examples if c != "request")
        example = op["responses"][code]["content"]["application/json"]["example"]
        assert example == examples[code]
        TypeAdapter(response_model).validate_python(example)
    imported = EXAMPLES[("post", "/api/v1/user-sessions/import-claude-session")]["request"]["messages"]
    assert [m["content"]["type"] for m in imported] == ["text", "tool_use", "tool_result", "text"]
    launch = EXAMPLES[("post", "/api/v1/workspaces/{workspace_id}/sessions")]["request"]
    assert launch["session_settings"]["code"]["default_provider"] == "claude_code"
