"""Daemon configuration, read from a TOML file.

Example (every key optional)::

    [daemon]
    state_dir = "~/.local/state/berth"      # SQLite event log, default socket
    repos_root = "~/.local/share/berth/repos"  # clones of repository URLs
    worktrees_root = "~/.local/share/berth/worktrees"
    max_sessions = 16                       # agents running at once
    stop_grace_seconds = 10
    log_format = "text"                     # or "json"
    log_level = "INFO"                      # DEBUG, INFO, WARNING, ERROR
    stop_agents_on_shutdown = false         # true: pause every agent when the daemon exits

    [listen]
    unix_socket = "/run/berth/daemon.sock"  # default: <state_dir>/daemon.sock
    unix_socket_mode = 0o660
    tcp = "0.0.0.0:7443"                    # optional; needs tls_cert/tls_key
    tls_cert = "/etc/berth/daemon.crt"
    tls_key = "/etc/berth/daemon.key"
    token = "…"                             # bearer token for TCP callers
    token_file = "/etc/berth/token"         # or read it from a file
    metrics = "127.0.0.1:9464"              # optional Prometheus endpoint

    [providers.claude_code]
    binary = "claude"                       # a name on PATH or a path
    args = []                               # extra arguments
    env = {}                                # extra environment
    default_model = ""

    [providers.codex]
    binary = "codex"
    args = []                               # extra `codex app-server` options, e.g. ["-c", "key=value"]
    env = {}

    [pool]
    size = 2                                # ready worktrees kept per repository (0: none)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["PROVIDERS", "DaemonConfig", "ListenConfig", "PoolConfig", "ProviderConfig", "load_config"]

PROVIDERS = ("claude_code", "codex")
_DEFAULT_BINARIES = {"claude_code": "claude", "codex": "codex"}


@dataclass
class ProviderConfig:
    """How to run one agent CLI."""

    name: str
    binary: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    default_model: str = ""


@dataclass
class ListenConfig:
    unix_socket: Path | None = None
    unix_socket_mode: int = 0o660
    tcp: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token: str | None = None
    metrics: str | None = None


@dataclass
class DialOutConfig:
    """The control plane's tunnel listener this daemon dials (for a machine the control plane cannot reach)."""

    address: str  # host:port
    credential: str  # the machine credential (from credential_file)
    ca: Path | None = None  # PEM roots for the listener's certificate; None: the system's
    plaintext: bool = False  # loopback only (make run)


@dataclass
class PoolConfig:
    """Ready worktrees kept per repository, so a launch does not wait for a checkout."""

    size: int = 2


@dataclass
class DaemonConfig:
    state_dir: Path
    repos_root: Path
    worktrees_root: Path
    listen: ListenConfig = field(default_factory=ListenConfig)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    pool: PoolConfig = field(default_factory=PoolConfig)
    dial_out: DialOutConfig | None = None
    max_sessions: int = 16
    stop_grace_seconds: float = 10.0
    log_format: str = "text"
    log_level: str = "INFO"
    # False under systemd (KillMode=process keeps agents across a restart and the
    # next start resumes them); True for `make run` and tests: pause them on exit.
    stop_agents_on_shutdown: bool = False

    @property
    def db_path(self) -> Path:
        return self.state_dir / "daemon.sqlite3"

    @property
    def socket_path(self) -> Path:
        """listen.unix_socket, else systemd's $RUNTIME_DIRECTORY/daemon.sock, else <state_dir>/daemon.sock."""
        if self.listen.unix_socket:
            return self.listen.unix_socket
        runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
        return Path(runtime) / "daemon.sock" if runtime else self.state_dir / "daemon.sock"

    def provider(self, name: str) -> ProviderConfig:
        return self.providers[name]


def _path(value: Any, default: Path) -> Path:
    return Path(os.path.expanduser(str(value))) if value else default


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or os.path.expanduser(fallback))


def _check_hostport(name: str, value: Any) -> None:
    host, sep, port = str(value).rpartition(":")
    if not isinstance(value, str) or not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{name}: expected host:port, got {value!r}")


class _Table(BaseModel):
    """One TOML table: only the keys below, each of exactly its type (a typo or "false" is an error)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _DaemonTable(_Table):
    state_dir: str | None = None
    repos_root: str | None = None
    worktrees_root: str | None = None
    max_sessions: int | None = None
    stop_grace_seconds: float | None = None
    log_format: str | None = None
    log_level: str | None = None
    stop_agents_on_shutdown: bool | None = None


class _ListenTable(_Table):
    unix_socket: str | None = None
    unix_socket_mode: int | None = None
    tcp: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    token: str | None = None
    token_file: str | None = None
    metrics: str | None = None


class _ProviderTable(_Table):
    binary: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    default_model: str | None = None


class _ProvidersTable(_Table):
    claude_code: _ProviderTable | None = None
    codex: _ProviderTable | None = None


class _PoolTable(_Table):
    size: int | None = None


class _DialOutTable(_Table):
    address: str
    credential_file: str
    ca_file: str | None = None
    plaintext: bool | None = None


class _ConfigFile(_Table):
    daemon: _DaemonTable | None = None
    listen: _ListenTable | None = None
    providers: _ProvidersTable | None = None
    pool: _PoolTable | None = None
    dial_out: _DialOutTable | None = None


def check_shape(model: type[BaseModel], data: dict[str, Any]) -> None:
    """ValueError naming every unknown key and every value of the wrong type in `data`."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"{key}: unknown key")
            else:
                problems.append(f"{key}: {err['msg'].lower()} (got {err.get('input')!r})")
        raise ValueError("; ".join(problems)) from None


def from_dict(data: dict[str, Any]) -> DaemonConfig:
    """Build a config from parsed TOML (also used by tests)."""
    if "providers" in data and isinstance(data["providers"], dict):
        unknown = set(data["providers"]) - set(PROVIDERS)
        if unknown:
            raise ValueError(f"providers: unknown provider(s) {sorted(unknown)}; known: {list(PROVIDERS)}")
    if isinstance(data.get("pool"), dict) and "size" in data["pool"]:
        _pool_size(data["pool"]["size"])
    check_shape(_ConfigFile, data)
    d = data.get("daemon", {})
    state_dir = _path(
        d.get("state_dir") or os.environ.get("STATE_DIRECTORY"), _xdg("XDG_STATE_HOME", "~/.local/state") / "berth"
    )
    share = _xdg("XDG_DATA_HOME", "~/.local/share") / "berth"
    lt = data.get("listen", {})
    token = lt.get("token")
    if not token and lt.get("token_file"):
        token = Path(os.path.expanduser(lt["token_file"])).read_text().strip()
    listen = ListenConfig(
        unix_socket=_path(lt["unix_socket"], Path()) if lt.get("unix_socket") else None,
        unix_socket_mode=int(lt.get("unix_socket_mode", 0o660)),
        tcp=lt.get("tcp"),
        tls_cert=_path(lt.get("tls_cert"), Path()) if lt.get("tls_cert") else None,
        tls_key=_path(lt.get("tls_key"), Path()) if lt.get("tls_key") else None,
        token=token or None,
        metrics=lt.get("metrics"),
    )
    if listen.tcp and not (listen.tls_cert and listen.tls_key):
        raise ValueError("listen.tcp needs listen.tls_cert and listen.tls_key")
    if listen.tcp and not listen.token:
        raise ValueError("listen.tcp needs listen.token (or listen.token_file)")
    for key in ("tcp", "metrics"):
        value = getattr(listen, key)
        if value is not None:
            _check_hostport(f"listen.{key}", value)
    log_format = str(d.get("log_format", "text"))
    if log_format not in ("text", "json"):
        raise ValueError(f"daemon.log_format: must be 'text' or 'json', got {log_format!r}")
    log_level = str(d.get("log_level", "INFO")).upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"daemon.log_level: must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    providers = {}
    for name in PROVIDERS:
        p = data.get("providers", {}).get(name, {})
        providers[name] = ProviderConfig(
            name=name,
            binary=str(p.get("binary", _DEFAULT_BINARIES[name])),
            args=[str(a) for a in p.get("args", [])],
            env={str(k): str(v) for k, v in p.get("env", {}).items()},
            default_model=str(p.get("default_model", "")),
        )
    unknown = set(data.get("providers", {})) - set(PROVIDERS)
    if unknown:
        raise ValueError(f"providers: unknown provider(s) {sorted(unknown)}; known: {list(PROVIDERS)}")
    dial_out = _dial_out(data["dial_out"]) if "dial_out" in data else None
    max_sessions = int(d.get("max_sessions", 16))
    if max_sessions < 1:
        raise ValueError("daemon.max_sessions must be at least 1")
    return DaemonConfig(
        state_dir=state_dir,
        repos_root=_path(d.get("repos_root"), share / "repos"),
        worktrees_root=_path(d.get("worktrees_root"), share / "worktrees"),
        listen=listen,
        providers=providers,
        pool=PoolConfig(size=_pool_size(data.get("pool", {}).get("size", 2))),
        dial_out=dial_out,
        max_sessions=max_sessions,
        stop_grace_seconds=float(d.get("stop_grace_seconds", 10.0)),
        log_format=log_format,
        log_level=log_level,
        stop_agents_on_shutdown=bool(d.get("stop_agents_on_shutdown", False)),
    )


def _dial_out(table: dict[str, Any]) -> DialOutConfig:
    _check_hostport("dial_out.address", table["address"])
    host = table["address"].rsplit(":", 1)[0].strip("[]")
    plaintext = bool(table.get("plaintext", False))
    if plaintext and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("dial_out.plaintext: allowed only for a loopback address (the credential travels on it)")
    path = Path(os.path.expanduser(table["credential_file"]))
    try:
        credential = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"dial_out.credential_file: cannot read {path}: {exc.strerror}") from None
    if not credential:
        raise ValueError(f"dial_out.credential_file: {path} is empty")
    ca = Path(os.path.expanduser(table["ca_file"])) if table.get("ca_file") else None
    return DialOutConfig(address=table["address"], credential=credential, ca=ca, plaintext=plaintext)


def _pool_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 16:
        raise ValueError(f"pool.size: must be a whole number from 0 to 16, got {value!r}")
    return value


def load_config(path: Path | str | None) -> DaemonConfig:
    """Read the TOML file at `path` (or use the defaults when None); a ValueError names the file."""
    if path is None:
        return from_dict({})
    with open(path, "rb") as f:
        try:
            return from_dict(tomllib.load(f))
        except ValueError as err:  # tomllib.TOMLDecodeError included
            raise ValueError(f"{path}: {err}") from None
