"""The whole OpenAPI document fuzzed by schemathesis against the real app on SQLite: no response is a 5xx,
and every documented response conforms to the schema. Bounded in time; it stops by itself."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

# Seconds of generated requests (the examples and coverage phases run in full first).
FUZZ_SECONDS = int(os.environ.get("BERTH_FUZZ_SECONDS", "75"))


ADMIN_PATHS = r"^/api/v1/(machines|workspaces|tokens)"


def _hooks_env() -> dict[str, str]:
    """This environment, with tests/controlplane/schemathesis_hooks.py importable and loaded by `st`."""
    root = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(p for p in (str(root), str(root / "proto"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "SCHEMATHESIS_HOOKS": "tests.controlplane.schemathesis_hooks"}


async def _schemathesis(url: str, token: str, report: Path, seconds: int, *filters: str) -> str:
    """Run `st run` on the app's OpenAPI document; its output (AssertionError unless it passed)."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a test dependency (pip install -e '.[test]')"
    proc = await asyncio.create_subprocess_exec(
        st,
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-time",
        str(seconds),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report),
        "--no-color",
        *filters,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=report.parent,  # its cache goes there, not into the checkout
        env=_hooks_env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 400)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-20000:]
    assert "Tested:" in text and "No tests were run" not in text.split("Fuzzing", 1)[-1][:200], text[-5000:]
    return text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_fuzzed_requests_never_get_a_5xx_and_answers_match_the_schema(cp, fake_daemon, tmp_path: Path):
    _fake, address = fake_daemon
    alice = await cp.owner("alice")
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    # Something to find: a machine, a workspace and a session of the fuzzing owner.
    m = await cp.machine(address, "alice")
    ws = await cp.workspace("/srv/fuzz", "alice", m["id"])
    r = await alice.post(f"/api/v1/workspaces/{ws['id']}/sessions", json={"initial_prompt": "seed"})
    assert r.status_code == 200, r.text

    # Every operation as an ordinary owner (admin operations answer 403).
    await _schemathesis(cp.url, token, tmp_path / "owner", FUZZ_SECONDS)
    # The administration as an admin; /info asks the machine's daemon, which a fuzzed address does not have.
    admin_token = cp.admin.headers["Authorization"].removeprefix("Bearer ")
    await _schemathesis(
        cp.url,
        admin_token,
        tmp_path / "admin",
        FUZZ_SECONDS // 2,
        "--include-path-regex",
        ADMIN_PATHS,
        "--exclude-path-regex",
        "/info$",
    )
