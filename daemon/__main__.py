"""`python -m daemon --config FILE` / `berth-daemon`: run the daemon until SIGTERM or SIGINT.

`berth-daemon enroll --url URL --token TOKEN [--ca FILE] [--config FILE]` joins a control plane
as a machine that dials out (daemon/enrollment.py), then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tomllib

import uvloop

from daemon import __version__
from daemon.config import DaemonConfig, load_config
from daemon.enrollment import enroll
from daemon.logs import LOG_FORMATS, setup_logging
from daemon.server import DaemonServer, StartupError

__all__ = ["main"]

log = logging.getLogger("daemon")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="berth-daemon", description="Berth daemon: runs coding agents in git worktrees."
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("BERTH_DAEMON_CONFIG"),
        help="TOML config file (default: $BERTH_DAEMON_CONFIG, else built-in defaults)",
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="overrides daemon.log_format")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (overrides daemon.log_level)")
    parser.add_argument("--version", action="version", version=f"berth-daemon {__version__}")
    return parser.parse_args(argv)


async def _serve(config: DaemonConfig) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop_requested.is_set():
            log.warning("%s again: already shutting down (SIGKILL forces)", signal.Signals(signum).name)
            return
        log.info("received %s", signal.Signals(signum).name)
        stop_requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    server = DaemonServer(config)
    try:
        await server.start()
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except Exception:
        log.exception("cannot start")
        return 1
    stopped = asyncio.create_task(server.wait())
    requested = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({stopped, requested}, return_when=asyncio.FIRST_COMPLETED)
    requested.cancel()
    await server.stop()
    await stopped
    return 0


def _enroll(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="berth-daemon enroll",
        description="Trade an enrollment token for this machine's credential and write the daemon's [dial_out] config.",
    )
    parser.add_argument("--url", required=True, help="the control plane's URL (https://…; http only on loopback)")
    parser.add_argument(
        "--token",
        default=os.environ.get("BERTH_ENROLLMENT_TOKEN"),
        help="the enrollment token from POST /api/v1/machines (default: $BERTH_ENROLLMENT_TOKEN)",
    )
    parser.add_argument("--ca", help="PEM CA that signed the control plane's certificates (default: system CAs)")
    parser.add_argument(
        "--config",
        default=os.environ.get("BERTH_DAEMON_CONFIG"),
        help="the daemon's TOML config to write (default: $BERTH_DAEMON_CONFIG, else ~/.config/berth/daemon.toml)",
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or $BERTH_ENROLLMENT_TOKEN) is required")
    return enroll(args.url, args.token, ca_file=args.ca, config_path=args.config)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 after a clean shutdown)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["enroll"]:
        return _enroll(argv[1:])
    args = _parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"berth-daemon: bad config: {exc}", file=sys.stderr)
        return 2
    try:
        setup_logging(args.log_format or config.log_format, args.log_level or config.log_level)
    except ValueError as exc:
        print(f"berth-daemon: {exc}", file=sys.stderr)
        return 2
    return uvloop.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
