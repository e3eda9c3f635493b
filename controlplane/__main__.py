"""`python -m controlplane [--config FILE] [serve|migrate|create-token --owner NAME [--admin]]`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from controlplane.config import ControlPlaneConfig, load_config

__all__ = ["create_token_command", "main", "migrate_command", "serve"]


def serve(config: ControlPlaneConfig) -> None:
    """Run the API under uvicorn on uvloop until SIGINT/SIGTERM (then exit 0 after a graceful shutdown)."""
    import contextlib
    import signal

    import uvicorn

    from controlplane.app import create_app
    from controlplane.logs import configure_logging

    app = create_app(config)

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            app.state.services.stop_streams()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

        # uvicorn re-raises the signal after shutting down (exit -15); we want a plain, clean exit.
        @contextlib.contextmanager
        def capture_signals(self):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    configure_logging(config.log_format)
    _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            loop="uvloop",
            log_config=None,
            proxy_headers=False,
            ws="none",
            timeout_graceful_shutdown=5,
        )
    ).run()


async def _create_token(config: ControlPlaneConfig, owner: str, is_admin: bool, name: str | None) -> str:
    from controlplane.auth import create_token
    from controlplane.db.engine import make_engine, make_sessionmaker, migrate

    engine = make_engine(config.database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as db:
            _row, plain = await create_token(db, owner, is_admin=is_admin, name=name)
            await db.commit()
        return plain
    finally:
        await engine.dispose()


def create_token_command(config: ControlPlaneConfig, owner: str, is_admin: bool, name: str | None = None) -> str:
    """Create a token (e.g. the first admin token); returns the plain token, which is stored only hashed."""
    return asyncio.run(_create_token(config, owner, is_admin, name))


def migrate_command(config: ControlPlaneConfig) -> None:
    """Upgrade the database schema to the newest revision."""
    from controlplane.db.engine import make_engine, migrate

    async def run() -> None:
        engine = make_engine(config.database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth-controlplane", description="Berth control plane")
    parser.add_argument("--config", help="TOML config file")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the REST API (default)")
    sub.add_parser("migrate", help="upgrade the database schema")
    tok = sub.add_parser("create-token", help="create an API token and print it once")
    tok.add_argument("--owner", required=True)
    tok.add_argument("--admin", action="store_true", help="the token may manage machines, workspaces, tokens")
    tok.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as err:
        print(f"berth-controlplane: bad config: {err}", file=sys.stderr)
        return 2
    if args.command in (None, "serve"):
        serve(config)
    elif args.command == "migrate":
        migrate_command(config)
        print("database is up to date")
    elif args.command == "create-token":
        if not args.owner.strip():
            print("berth-controlplane: --owner must not be empty", file=sys.stderr)
            return 2
        print(create_token_command(config, args.owner, args.admin, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
