"""The OpenAPI document, completed: the bearer scheme on every protected operation, the errors each
operation really answers (with their bodies), examples for the seed documents' requests and answers,
and the launch acknowledgement's payload as a schema.

It runs once, when /openapi.json is first asked for, over what FastAPI generated; requests never pay for it.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["ADMIN_OPERATIONS", "DAEMON_OPERATIONS", "EXAMPLES", "PUBLIC_PATHS", "install_openapi"]

SCHEME = "bearerAuth"

# Everything else needs a bearer token (tests/controlplane/test_openapi_doc.py holds both lists to the app).
PUBLIC_PATHS = {"/health", "/api/v1/enroll"}
# Operations only admin tokens may call (others: 403).
ADMIN_OPERATIONS = {
    ("post", "/api/v1/machines"),
    ("patch", "/api/v1/machines/{machine_id}"),
    ("delete", "/api/v1/machines/{machine_id}"),
    ("post", "/api/v1/workspaces"),
    ("patch", "/api/v1/workspaces/{workspace_id}"),
    ("delete", "/api/v1/workspaces/{workspace_id}"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{token_id}"),
    ("post", "/api/v1/machines/{machine_id}/enrollment"),
    ("post", "/api/v1/machines/{machine_id}/revoke"),
}
# Other answers an operation gives beyond the ones derived above.
EXTRA_ERRORS = {
    # The enrollment token is the proof (wrong, used or expired: 401); 409 without a [tunnel] listener.
    ("post", "/api/v1/enroll"): ["401", "409"],
    ("post", "/api/v1/machines/{machine_id}/enrollment"): ["409"],
    ("post", "/api/v1/machines/{machine_id}/revoke"): ["409"],
}

# Operations that call a daemon: they also answer the daemon's refusals and failures.
DAEMON_OPERATIONS = {
    ("post", "/api/v1/workspaces/{workspace_id}/sessions"),
    ("post", "/api/sessions"),
    ("patch", "/api/sessions/{session_id}"),
    ("delete", "/api/sessions/{session_id}"),
    ("post", "/api/sessions/{session_id}/message"),
    ("post", "/api/sessions/{session_id}/interrupt"),
    ("get", "/api/sessions/{session_id}/approvals"),
    ("post", "/api/sessions/{session_id}/approvals/{approval_id}"),
    ("get", "/api/sessions/{session_id}/diff"),
    ("post", "/api/sessions/{session_id}/commit"),
    ("post", "/api/sessions/{session_id}/merge"),
    ("post", "/api/sessions/{session_id}/push"),
    ("post", "/api/v1/machines"),
    ("get", "/api/v1/machines/{machine_id}/info"),
    ("get", "/api/v1/workspaces/{workspace_id}/worktrees"),
    ("post", "/api/v1/workspaces/{workspace_id}/worktrees/prune"),
}

_DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
_LAUNCH_ERROR = {"$ref": "#/components/schemas/LaunchWorkspaceSessionResponse"}


def _error(description: str, example: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or _DETAIL, "example": {"detail": example}}},
    }


_ERRORS: dict[str, dict[str, Any]] = {
    "401": _error("No bearer token, or one that is unknown or revoked", "invalid token"),
    "403": _error("The token is not an admin token", "this endpoint needs an admin token"),
    "404": _error("An id that names none of your objects", "session 'session-0f3a9c' not found"),
    "409": _error(
        "The session's or worktree's state refuses it (the detail says why)",
        "the worktree has uncommitted changes; pass force=true to remove them too",
    ),
    "413": _error(
        "The request body is larger than the control plane takes ([server] max_body_bytes)", "request body too large"
    ),
    "429": _error("The daemon is at its limit (max_sessions, or a rate)", "daemon: max_sessions (4) reached"),
    "502": _error("The daemon is unreachable or failed", "daemon unreachable: connection refused"),
    "503": _error(
        "The control plane is shutting down, or the machine dials out and its tunnel is not open",
        "machine machine-… is offline since 2026-12-02T10:00:00+00:00",
    ),
    "504": _error("The daemon did not answer in time", "daemon call timed out"),
}

_LAUNCH_PAYLOAD = {
    "type": "object",
    "description": "The daemon's acknowledgement and the ids of what was recorded; other keys may be added",
    "additionalProperties": True,
    "properties": {
        "agent_session_id": {"type": "string"},
        "user_session_id": {"type": "string"},
        "workspace_id": {"type": ["string", "null"]},
        "machine_id": {"type": "string"},
        "worktree_path": {"type": ["string", "null"], "description": "The agent's working directory"},
        "branch": {"type": ["string", "null"]},
        "provider": {"type": ["string", "null"], "description": "claude_code or codex"},
        "model": {"type": ["string", "null"]},
        "pid": {"type": ["number", "null"], "description": "The agent process on the machine"},
        "session_status": {"type": ["string", "null"], "description": "The daemon's status of the session"},
        "provider_session_id": {"type": ["string", "null"], "description": "Claude's session id, Codex's thread id"},
        "reused": {"type": ["boolean", "null"], "description": "An agent already running was attached to"},
        "pooled": {"type": ["boolean", "null"], "description": "The worktree came from the ready pool"},
        "checkout_pending": {"type": ["boolean", "null"]},
        "error": {"type": "string", "description": "Only when status is 'error': what went wrong"},
        "code": {"type": "string", "description": "Only when status is 'error': the gRPC status"},
        "field": {"type": "string", "description": "Only when status is 'error': the field at fault"},
        "detail": {"type": "array", "items": {"type": "object"}, "description": "Validation-style detail"},
    },
}

_TOOL_USE_IMPORT = {
    "workspace_id": "ws-4f61f4cd6e28",
    "claude_session_id": "5b3c1f0e-2c4d-4e8a-9f10-3a2b1c0d9e8f",
    "messages": [
        {
            "message_id": "m1",
            "role": "user",
            "content": {"type": "text", "text": "What is in this repo?"},
            "created_at": "2026-12-01T09:00:00Z",
            "metadata": {},
        },
        {
            "message_id": "m2",
            "role": "assistant",
            "content": {"type": "tool_use", "name": "Bash", "tool_use_id": "toolu_01", "arguments": {"command": "ls"}},
            "created_at": "2026-12-01T09:00:02Z",
            "metadata": {"model": "claude-sonnet-4-5"},
        },
        {
            "message_id": "m3",
            "role": "tool",
            "content": {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "output": "README.md\nsrc\n",
                "is_error": False,
                "success": True,
            },
            "created_at": "2026-12-01T09:00:03Z",
            "metadata": {},
        },
        {
            "message_id": "m4",
            "role": "assistant",
            "content": {"type": "text", "text": "A README and src/."},
            "created_at": "2026-12-01T09:00:05Z",
            "metadata": {},
        },
    ],
    "worktree_name": "laptop-session",
    "session_name": "from my laptop",
}

_SUMMARY = {
    "id": "session-0f3a9c2b7d1e4a55",
    "agent_id": "CLAUDE_CODE",
    "task_id": "task-42",
    "status": "active",
    "created_at": "2026-12-01T09:00:00Z",
    "last_active": "2026-12-01T09:03:10Z",
    "message_count": 12,
    "workspace_id": "ws-4f61f4cd6e28",
    "machine_id": "machine-7a1c",
    "user_session_id": "usess-9b2e",
    "pending_approvals": 0,
    "usage": {
        "input_tokens": 5120,
        "output_tokens": 830,
        "cache_read_tokens": 0,
        "cache_creation_tokens": 0,
        "cost_usd": 0.0213,
        "turns": 2,
        "duration_ms": 8450,
    },
    "provider_session_id": "5b3c1f0e-2c4d-4e8a-9f10-3a2b1c0d9e8f",
}
_DETAIL_EXAMPLE = {
    **_SUMMARY,
    "data": {"workdir": "/home/dev/.local/state/berth/worktrees/app/fix-tests", "model": "claude-sonnet-4-5"},
    "prompt": "Fix the failing test",
    "worktree_name": "fix-tests",
    "last_error": None,
    "launched": True,
}
_LAUNCH_OK = {
    "status": "ok",
    "payload": {
        "agent_session_id": "session-0f3a9c2b7d1e4a55",
        "user_session_id": "usess-9b2e",
        "workspace_id": "ws-4f61f4cd6e28",
        "machine_id": "machine-7a1c",
        "worktree_path": "/home/dev/.local/state/berth/worktrees/app/fix-tests",
        "branch": "fix-tests",
        "provider": "claude_code",
        "model": "claude-sonnet-4-5",
        "pid": 48213,
        "session_status": "active",
        "provider_session_id": "",
        "reused": False,
        "pooled": True,
        "checkout_pending": False,
    },
}

# (method, path) → {"request": example body, "<status>": example answer}
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/user-sessions/import-claude-session"): {
        "request": _TOOL_USE_IMPORT,
        "200": {
            "success": True,
            "user_session_id": "usess-9b2e",
            "agent_session_id": "session-0f3a9c2b7d1e4a55",
            "message_count": 4,
            "error": None,
            "claude_code_file": None,
        },
    },
    ("post", "/api/v1/workspaces/{workspace_id}/sessions"): {
        "request": {
            "initial_prompt": "Fix the failing test",
            "worktree_name": "fix-tests",
            "metadata": {"ticket": "APP-12"},
            "session_settings": {
                "code": {
                    "mode": "agent",
                    "default_provider": "claude_code",
                    "providers": {"claude_code": {"model": "claude-sonnet-4-5"}},
                    "permissions": "ask",
                    "allowed_tools": ["Bash(npm test:*)"],
                }
            },
        },
        "200": _LAUNCH_OK,
    },
    ("get", "/api/sessions"): {"200": {"sessions": [_SUMMARY], "total": 1, "limit": 50, "offset": 0}},
    ("post", "/api/sessions"): {
        "request": {
            "agent_id": "CLAUDE_CODE",
            "task_id": "task-42",
            "prompt": "Fix the failing test",
            "workspace_id": "ws-4f61f4cd6e28",
        },
        "201": {
            "id": "session-0f3a9c2b7d1e4a55",
            "agent_id": "CLAUDE_CODE",
            "task_id": "task-42",
            "status": "active",
            "created_at": "2026-12-01T09:00:00Z",
            "workspace_id": "ws-4f61f4cd6e28",
            "machine_id": "machine-7a1c",
            "user_session_id": "usess-9b2e",
            "launch": _LAUNCH_OK,
        },
    },
    ("get", "/api/sessions/{session_id}"): {"200": _DETAIL_EXAMPLE},
    ("patch", "/api/sessions/{session_id}"): {
        "request": {"status": "paused"},
        "200": {**_DETAIL_EXAMPLE, "status": "paused"},
    },
    ("post", "/api/sessions/{session_id}/message"): {
        "request": {"content": "Now add a test for it"},
        "200": {"message_id": "msg-5d2a9f0c1b3e7a64", "status": "sent", "timestamp": "2026-12-01T09:04:00Z"},
    },
    ("get", "/api/sessions/{session_id}/messages"): {
        "200": {
            "messages": [
                {
                    "id": "msg-5d2a9f0c1b3e7a64",
                    "seq": 7,
                    "role": "assistant",
                    "content": {
                        "type": "tool_use",
                        "name": "Bash",
                        "tool_use_id": "toolu_01",
                        "arguments": {"command": "npm test"},
                    },
                    "created_at": "2026-12-01T09:04:02Z",
                    "metadata": {"model": "claude-sonnet-4-5"},
                    "status": None,
                },
                {
                    "id": "msg-6e3b0a1d2c4f8b75",
                    "seq": 8,
                    "role": "tool",
                    "content": {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "output": "1 passing",
                        "is_error": False,
                        "success": True,
                    },
                    "created_at": "2026-12-01T09:04:05Z",
                    "metadata": {},
                    "status": None,
                },
            ],
            "total": 2,
            "limit": 100,
            "offset": 0,
        },
    },
}


def _complete(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A Berth token (`berth token create`; the first admin one: `berth token bootstrap`)",
    }
    schemas = components.setdefault("schemas", {})
    if "LaunchWorkspaceSessionResponse" in schemas:
        schemas["LaunchWorkspaceSessionResponse"]["properties"]["payload"] = _LAUNCH_PAYLOAD
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            key = (method, path)
            responses = op.setdefault("responses", {})
            wanted: list[str] = []
            if path not in PUBLIC_PATHS:
                op["security"] = [{SCHEME: []}]
                wanted.append("401")
            if key in ADMIN_OPERATIONS:
                wanted.append("403")
            if "{" in path or key in DAEMON_OPERATIONS:
                wanted.append("404")
            if "requestBody" in op:
                wanted.append("413")
            if key in DAEMON_OPERATIONS:
                wanted += ["409", "429", "502", "503", "504"]
            wanted += EXTRA_ERRORS.get(key, [])
            for code in wanted:
                _add_error(responses, code, key)
            for code in [c for c, r in responses.items() if c[0] in "45" and "content" not in r]:
                if code == "422":  # a route's own description of FastAPI's validation errors
                    responses[code]["content"] = {
                        "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
                    }
                else:
                    _add_error(responses, code, key)
            for code, example in EXAMPLES.get(key, {}).items():
                if code == "request":
                    body = op.get("requestBody", {}).get("content", {}).get("application/json")
                    if body is not None:
                        body["example"] = example
                elif code in responses:
                    responses[code].setdefault("content", {}).setdefault("application/json", {})["example"] = example
    return spec


def _add_error(responses: dict[str, Any], code: str, key: tuple[str, str]) -> None:
    """The error `code` with its body, keeping a description the route gave."""
    if code in responses and "content" in responses[code]:
        return
    described = responses.get(code, {}).get("description")
    responses[code] = copy.deepcopy(_ERRORS.get(code) or _error(described or "An error", "what went wrong"))
    if described:
        responses[code]["description"] = described
    if key == ("post", "/api/v1/workspaces/{workspace_id}/sessions") and code in ("502", "504"):
        responses[code]["content"]["application/json"] = {
            "schema": _LAUNCH_ERROR,
            "example": {
                "status": "error",
                "payload": {
                    "agent_session_id": "session-0f3a9c2b7d1e4a55",
                    "error": "daemon unreachable",
                    "code": "UNAVAILABLE",
                },
            },
        }


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` answer the completed document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _complete(generated)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
