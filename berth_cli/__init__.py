"""`berth`: the operator CLI over the control plane's REST API.

Tables and colour for people, `--json` for scripts. The URL and token come from `--url`/`--token`,
else `BERTH_URL`/`BERTH_TOKEN`, else run.json (written by `make run`: `$BERTH_HOME`, then `.berth/` in
the working directory or a parent, then the user config dir), else http://127.0.0.1:8080.

Modules: `_client` (the REST client, one httpx.Client per run), `_target` (where the URL and token come
from), `_render` (tables, colour, JSON lines), `_*_commands` (one function per command), `_main` (the
parser and entry point), `runfile` (run.json and the first admin token, shared with `make run`).
"""

from berth_cli._client import Client, CliError, sse_records
from berth_cli._main import build_parser, main
from berth_cli._render import Output
from berth_cli._session_commands import turn_outcome
from berth_cli._target import find_run_json, resolve_target, run_facts, run_json_candidates

__all__ = [
    "CliError",
    "Client",
    "Output",
    "build_parser",
    "find_run_json",
    "sse_records",
    "main",
    "resolve_target",
    "run_facts",
    "run_json_candidates",
    "turn_outcome",
]
