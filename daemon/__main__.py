"""`python -m daemon --config FILE` / `berth-daemon`: run the daemon until SIGTERM or SIGINT."""

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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 after a clean shutdown)."""
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
