"""The reads baseline: a bare FastAPI app answering fixed JSON bodies (path → body from BENCH_BODIES)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

__all__ = ["app"]

app = FastAPI()
_BODIES: dict[str, bytes] = {
    path: body.encode() for path, body in json.loads(Path(os.environ["BENCH_BODIES"]).read_text()).items()
}


@app.get("/api/sessions")
async def list_sessions() -> Response:
    return Response(_BODIES["/api/sessions"], media_type="application/json")


@app.get("/api/sessions/{session_id}")
async def get_session(session_id: str) -> Response:
    return Response(_BODIES["/api/sessions/{id}"], media_type="application/json")
