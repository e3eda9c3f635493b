"""Import: `import-claude-session` with 10,000 messages against plain sqlite3 executemany of the same rows."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

from bench.report import Report, Row
from bench.shared import SharedStack

__all__ = ["run_import"]

SECTION = "Import (10,000 messages)"
COUNT = 10_000


def _messages() -> list[dict]:
    out = []
    for i in range(COUNT):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(
            {
                "message_id": f"m{i}",
                "role": role,
                "content": {"type": "text", "text": f"message {i}: " + "lorem ipsum dolor sit amet " * 4},
                "created_at": "2024-01-16T10:00:00Z",
            }
        )
    return out


def _raw_insert(db_path: Path, messages: list[dict]) -> float:
    """Same rows into a table shaped like the control plane's messages table, one transaction."""
    db_path.unlink(missing_ok=True)
    con = sqlite3.connect(db_path)
    try:
        con.execute(
            "CREATE TABLE messages (pk INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(64) UNIQUE, "
            "agent_session_id VARCHAR(64), seq BIGINT, role VARCHAR(32), content JSON, metadata JSON, "
            "status VARCHAR(16), created_at DATETIME)"
        )
        con.execute("CREATE INDEX ix_messages_session_seq ON messages (agent_session_id, seq)")
        con.commit()
        sid = f"session_{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        rows = [
            (
                f"msg_{uuid.uuid4().hex}",
                sid,
                i + 1,
                m["role"],
                json.dumps(m["content"]),
                json.dumps({"import_message_id": m["message_id"]}),
                None,
                m["created_at"],
            )
            for i, m in enumerate(messages)
        ]
        with con:
            con.executemany(
                "INSERT INTO messages (id, agent_session_id, seq, role, content, metadata, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return time.perf_counter() - t0
    finally:
        con.close()


def run_import(report: Report, quick: bool, run_dir: Path, repo: Path, shared: SharedStack) -> None:
    runs = 3 if quick else 7
    messages = _messages()
    berth: list[float] = []
    raw: list[float] = []
    for i in range(runs):
        body = {
            "workspace_id": shared.ws,
            "claude_session_id": str(uuid.uuid4()),
            "messages": messages,
            "session_name": f"import-{i}",
        }
        t0 = time.perf_counter()
        resp = shared.stack.api("POST", "/api/v1/user-sessions/import-claude-session", body)
        berth.append(time.perf_counter() - t0)
        if resp.json().get("message_count") != COUNT:
            raise RuntimeError(f"import stored {resp.json()}")
        raw.append(_raw_insert(run_dir / "raw-import.sqlite3", messages))
        print(f"    #{i + 1}: import {berth[-1] * 1000:.0f} ms, executemany {raw[-1] * 1000:.0f} ms", flush=True)
    base = "sqlite3 executemany, one transaction"
    report.add(SECTION, Row(base, [v * 1000 for v in raw], "ms"))
    report.add(SECTION, Row("import-claude-session (REST)", [v * 1000 for v in berth], "ms", baseline=base))
    report.note(
        SECTION,
        "Berth: HTTP POST of the 10,000-message JSON document (about "
        f"{len(json.dumps(messages)) // 1024} KiB) → validation → one transaction in the control plane's SQLite "
        "database → answer. Baseline: the same rows (ids, JSON content, metadata) with Python's sqlite3 "
        "`executemany` into a table of the same shape, one transaction, in the same run.",
    )
