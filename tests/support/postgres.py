"""A throwaway PostgreSQL cluster for the test session, and a fresh database per test.

`postgres_cluster` (session scope) initdb's a cluster in a temp dir, starts it on a free 127.0.0.1 port
(socket dir under /tmp) — as the `postgres` user when running as root — and removes it at the end.
`PostgresCluster.create_database()` makes an empty database and returns its asyncpg SQLAlchemy URL.
Missing server binaries: the fixture fails when env CI is set, else skips.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import SESSION_PROCESSES

__all__ = ["PostgresCluster", "find_pg_bin", "postgres_cluster"]


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding a postgres server, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """A running throwaway cluster (trust auth, superuser `postgres`)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="berth-pg-", dir="/tmp"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.proc: subprocess.Popen[bytes] | None = None

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        with open(self.root / "postgres.log", "wb") as log:  # the server keeps its own copy
            self.proc = subprocess.Popen(
                self._cmd(
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        SESSION_PROCESSES.add(self.proc.pid)  # lives for the whole run, by design
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                check=False,
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start:\n{(self.root / 'postgres.log').read_text()[-3000:]}")
            time.sleep(0.1)

    def _client(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / tool), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args],
            check=True,
            capture_output=True,
        )

    def create_database(self) -> tuple[str, str]:
        """(name, SQLAlchemy asyncpg URL) of a new empty database."""
        name = "t_" + secrets.token_hex(6)
        self._client("createdb", name)
        return name, f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def drop_database(self, name: str) -> None:
        self._client("dropdb", "--force", "--if-exists", name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown; runuser passes it on
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole test session."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing (run scripts/ensure-system-packages.sh)")
        pytest.skip("PostgreSQL server binaries not installed")
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
