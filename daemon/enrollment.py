"""`berth-daemon enroll --url URL --token TOKEN [--ca FILE]`: join a control plane as a machine that dials out.

It trades the one-time enrollment token (from `POST /api/v1/machines {"dial_out": true}`) for the
machine credential at `POST URL/api/v1/enroll`, writes the credential to a 0600 file beside the config
(`<config stem>.credential`, so that several daemons' configs can share a directory), and writes the
config's `[dial_out]` table (the tunnel address, the credential file, the CA). The token may come from
$BERTH_ENROLLMENT_TOKEN instead of argv, where other users' `ps` could read it. The token and the
credential travel only over HTTPS (plain HTTP is allowed for a loopback URL only).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from daemon.config import load_config

__all__ = ["enroll"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _default_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "berth" / "daemon.toml"


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _with_dial_out(text: str, table: str) -> str:
    """`text` (a TOML file) with its [dial_out] table replaced by `table` (or `table` appended)."""
    pattern = re.compile(r"^\[dial_out\][^\n]*\n(?:(?!^\[).*\n?)*", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(table, text, count=1)
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + table


def enroll(url: str, token: str, *, ca_file: str | None, config_path: str | None) -> int:
    """Enroll this machine; the process exit status (0: enrolled, config written)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        print(f"berth-daemon enroll: --url must be https://host[:port] (got {url!r})", file=sys.stderr)
        return 2
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        print("berth-daemon enroll: --url must use https (the token and the credential are secrets)", file=sys.stderr)
        return 2
    context = ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
    request = urllib.request.Request(
        url.rstrip("/") + "/api/v1/enroll",
        data=json.dumps({"token": token}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            enrolled = json.loads(answer.read())
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("detail", err.reason)
        except ValueError:
            detail = err.reason
        print(f"berth-daemon enroll: the control plane refused: HTTP {err.code}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as err:
        print(f"berth-daemon enroll: cannot reach {url}: {getattr(err, 'reason', err)}", file=sys.stderr)
        return 1

    config = Path(config_path) if config_path else _default_config()
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    credential = config.parent / f"{config.stem}.credential"
    fd = os.open(credential, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(enrolled["credential"] + "\n")
    os.chmod(credential, 0o600)
    lines = [
        "[dial_out]",
        f"address = {_toml_string(enrolled['tunnel_address'])}",
        f"credential_file = {_toml_string(str(credential))}",
    ]
    if ca_file:
        ca_copy = config.parent / f"{config.stem}.control-plane-ca.pem"
        shutil.copyfile(ca_file, ca_copy)
        lines.append(f"ca_file = {_toml_string(str(ca_copy))}")
    if not enrolled.get("tunnel_tls", True):  # the daemon's config refuses plaintext off loopback
        lines.append("plaintext = true")
    old = config.read_text() if config.exists() else ""
    config.write_text(_with_dial_out(old, "\n".join(lines) + "\n"))
    os.chmod(config, 0o600)
    try:
        load_config(config)
    except ValueError as exc:
        print(f"berth-daemon enroll: the config written is not valid: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled as machine {enrolled['machine_id']}; the daemon dials {enrolled['tunnel_address']}")
    print(f"config: {config} (restart the daemon to use it)")
    return 0
