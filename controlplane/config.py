"""Control-plane configuration, read from a TOML file with environment overrides.

Example (every key optional)::

    [server]
    host = "127.0.0.1"
    port = 8080
    state_dir = "~/.local/state/berth"           # holds the default SQLite file
    database_url = "sqlite+aiosqlite:///<state_dir>/controlplane.sqlite3"
    max_body_bytes = 10485760                    # larger request bodies → 413
    daemon_deadline_seconds = 60                 # LaunchSession (and ImportTranscript) deadline
    rpc_deadline_seconds = 15                    # every other daemon call
    log_format = "text"                          # or "json"
    metrics_public = true                        # /metrics without a token
    secret_key_file = "<state_dir>/secret.key"   # Fernet key sealing machine tokens (or env BERTH_SECRET_KEY)
    cors_origins = []                            # browser origins allowed to call the API directly

    [tunnel]                                     # daemons that dial out (machines behind NAT)
    listen = "0.0.0.0:7443"                      # where daemons connect; plaintext only on loopback
    tls_cert = "/etc/berth/tunnel.crt"
    tls_key = "/etc/berth/tunnel.key"
    public_address = "berth.example.com:7443"    # what enrolled daemons dial (default: listen)
    enrollment_ttl_seconds = 3600                # how long an enrollment token can be used

Environment overrides: BERTH_DATABASE_URL, BERTH_HOST, BERTH_PORT, BERTH_STATE_DIR,
BERTH_LOG_FORMAT, BERTH_MAX_BODY_BYTES, BERTH_DAEMON_DEADLINE_SECONDS.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ControlPlaneConfig", "TunnelConfig", "from_dict", "load_config"]


@dataclass
class TunnelConfig:
    """The listener for daemons that dial out ([tunnel])."""

    listen: str
    tls_cert: Path | None = None
    tls_key: Path | None = None
    public_address: str = ""
    enrollment_ttl_seconds: float = 3600.0

    @property
    def address_for_daemons(self) -> str:
        return self.public_address or self.listen


@dataclass
class ControlPlaneConfig:
    """Everything the control plane needs to start."""

    state_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 10 * 1024 * 1024
    daemon_deadline_seconds: float = 60.0
    rpc_deadline_seconds: float = 15.0
    log_format: str = "text"
    metrics_public: bool = True
    # Seconds between SSE keep-alive comments.
    sse_keepalive_seconds: float = 15.0
    # Longest pause between reconnects of an event follower.
    ingest_max_backoff_seconds: float = 5.0
    secret_key_file: Path | None = None
    cors_origins: list[str] = field(default_factory=list)
    tunnel: TunnelConfig | None = None

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or (self.state_dir / "secret.key")


def _default_state_dir() -> Path:
    base = os.environ.get("STATE_DIRECTORY") or os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "berth"


class _ServerTable(BaseModel):
    """The [server] table: only these keys, each of exactly its type (a typo or "false" is an error)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    host: str | None = None
    port: int | None = None
    state_dir: str | None = None
    database_url: str | None = None
    max_body_bytes: int | None = None
    daemon_deadline_seconds: float | None = None
    rpc_deadline_seconds: float | None = None
    log_format: str | None = None
    metrics_public: bool | None = None
    sse_keepalive_seconds: float | None = None
    ingest_max_backoff_seconds: float | None = None
    secret_key_file: str | None = None
    cors_origins: list[str] | None = None


class _TunnelTable(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    listen: str
    tls_cert: str | None = None
    tls_key: str | None = None
    public_address: str | None = None
    enrollment_ttl_seconds: float | None = None


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    server: _ServerTable | None = None
    tunnel: _TunnelTable | None = None


def _check_file(data: dict[str, Any]) -> None:
    """ValueError naming every unknown key and every value of the wrong type."""
    try:
        _ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            why = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].lower()
            problems.append(
                f"{key}: {why}" + ("" if err["type"] == "extra_forbidden" else f" (got {err.get('input')!r})")
            )
        raise ValueError("; ".join(problems)) from None


class _EnvOverrides(BaseSettings):
    """BERTH_* variables that override the [server] table (an empty one overrides nothing)."""

    model_config = SettingsConfigDict(env_prefix="BERTH_", case_sensitive=True, env_ignore_empty=True, extra="ignore")

    DATABASE_URL: str | None = None
    HOST: str | None = None
    PORT: int | None = None
    STATE_DIR: str | None = None
    LOG_FORMAT: str | None = None
    MAX_BODY_BYTES: int | None = None
    DAEMON_DEADLINE_SECONDS: float | None = None


def _env_overrides() -> dict[str, Any]:
    """The [server] keys set by the environment; ValueError naming the variable of a value that is not its type."""
    try:
        found = _EnvOverrides()
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"BERTH_{err['loc'][0]}: {err['msg'].lower()} (got {err.get('input')!r})" for err in exc.errors())
        ) from None
    return {name.lower(): value for name, value in found.model_dump().items() if value is not None}


def from_dict(data: dict[str, Any]) -> ControlPlaneConfig:
    """Build a config from parsed TOML plus the environment's BERTH_* overrides (also used by tests)."""
    _check_file(data)
    s = {**dict(data.get("server", {})), **_env_overrides()}
    state_dir = Path(os.path.expanduser(str(s["state_dir"]))) if s.get("state_dir") else _default_state_dir()
    database_url = str(s.get("database_url") or f"sqlite+aiosqlite:///{state_dir / 'controlplane.sqlite3'}")
    cfg = ControlPlaneConfig(
        state_dir=state_dir,
        database_url=database_url,
        host=str(s.get("host", "127.0.0.1")),
        port=int(s.get("port", 8080)),
        max_body_bytes=int(s.get("max_body_bytes", 10 * 1024 * 1024)),
        daemon_deadline_seconds=float(s.get("daemon_deadline_seconds", 60.0)),
        rpc_deadline_seconds=float(s.get("rpc_deadline_seconds", 15.0)),
        log_format=str(s.get("log_format", "text")),
        metrics_public=bool(s.get("metrics_public", True)),
        sse_keepalive_seconds=float(s.get("sse_keepalive_seconds", 15.0)),
        ingest_max_backoff_seconds=float(s.get("ingest_max_backoff_seconds", 5.0)),
        cors_origins=[str(o) for o in s.get("cors_origins", [])],
        secret_key_file=Path(os.path.expanduser(str(s["secret_key_file"]))) if s.get("secret_key_file") else None,
    )
    if cfg.log_format not in ("text", "json"):
        raise ValueError("server.log_format must be 'text' or 'json'")
    if not 0 <= cfg.port <= 65535:
        raise ValueError("server.port must be between 0 and 65535")
    if cfg.max_body_bytes < 1024:
        raise ValueError("server.max_body_bytes must be at least 1024")
    if cfg.daemon_deadline_seconds <= 0 or cfg.rpc_deadline_seconds <= 0:
        raise ValueError("server.daemon_deadline_seconds and rpc_deadline_seconds must be positive")
    if "tunnel" in data:
        cfg.tunnel = _tunnel(data["tunnel"])
    return cfg


def _tunnel(t: dict[str, Any]) -> TunnelConfig:
    host, sep, port = t["listen"].rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"tunnel.listen: expected host:port, got {t['listen']!r}")
    tunnel = TunnelConfig(
        listen=t["listen"],
        tls_cert=Path(os.path.expanduser(t["tls_cert"])) if t.get("tls_cert") else None,
        tls_key=Path(os.path.expanduser(t["tls_key"])) if t.get("tls_key") else None,
        public_address=t.get("public_address") or "",
        enrollment_ttl_seconds=float(t.get("enrollment_ttl_seconds") or 3600.0),
    )
    if bool(tunnel.tls_cert) != bool(tunnel.tls_key):
        raise ValueError("tunnel.tls_cert and tunnel.tls_key go together")
    if tunnel.tls_cert is None and host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("tunnel.listen: plaintext is allowed on loopback only; set tunnel.tls_cert and tunnel.tls_key")
    if tunnel.enrollment_ttl_seconds <= 0:
        raise ValueError("tunnel.enrollment_ttl_seconds must be positive")
    return tunnel


def load_config(path: Path | str | None) -> ControlPlaneConfig:
    """Read the TOML file at `path` (or use the defaults when None); a ValueError names the file."""
    if path is None:
        return from_dict({})
    with open(path, "rb") as f:
        try:
            return from_dict(tomllib.load(f))
        except ValueError as err:  # tomllib.TOMLDecodeError included
            raise ValueError(f"{path}: {err}") from None
