"""Machines that dial out: enrollment, their credentials, and whether their tunnel is open.

An admin creates a machine with `dial_out: true`; its answer carries a one-time enrollment token
(stored as a SHA-256 hash, valid for `[tunnel] enrollment_ttl_seconds`). `berth-daemon enroll` trades
it at `POST /api/v1/enroll` for the machine credential (also stored hashed), which the daemon presents
on every tunnel it opens. Revoking or deleting the machine forgets the credential and closes the
tunnel. The row records which replica holds the tunnel (`tunnel_replica`), since when and when the
machine was last heard of, so that a later step can route a call to the replica that holds it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.config import TunnelConfig
from controlplane.db.models import Machine, utcnow
from controlplane.errors import Unauthorized
from controlplane.tunnel import TunnelChannel, TunnelConnection, TunnelServer

__all__ = ["DialOut", "Enrolled"]

log = logging.getLogger("controlplane.dial_out")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Enrolled:
    """What an enrolled daemon needs: who it is, its credential (shown once), where to dial."""

    machine_id: str
    credential: str
    tunnel_address: str
    tunnel_tls: bool


class DialOut:
    """The tunnel listener plus the machines' enrollment and credentials."""

    def __init__(self, config: TunnelConfig, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.config = config
        self.sessionmaker = sessionmaker
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        tls = None
        if config.tls_cert is not None and config.tls_key is not None:
            tls = (config.tls_key.read_bytes(), config.tls_cert.read_bytes())
        self.server = TunnelServer(config.listen, self._authenticate, tls=tls, on_change=self._record)

    async def start(self) -> None:
        # Tunnels this replica held before a restart are gone: say so before taking new ones.
        async with self.sessionmaker() as db, db.begin():
            await db.execute(
                update(Machine)
                .where(Machine.tunnel_replica == self.replica)
                .values(tunnel_replica=None, connected_since=None)
            )
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def tunnel_address(self) -> str:
        """What an enrolling daemon is told to dial."""
        address = self.config.address_for_daemons
        if address.endswith(":0"):  # a listener on a free port (tests, make run): the port it got
            address = f"{address.rsplit(':', 1)[0]}:{self.server.port}"
        return address

    # ---- enrollment -----------------------------------------------------------------------------

    def new_enrollment(self, machine: Machine) -> str:
        """A fresh one-time enrollment token for `machine` (the caller commits)."""
        token = "enroll-" + secrets.token_urlsafe(32)
        machine.enrollment_hash = _digest(token)
        machine.enrollment_expires_at = utcnow() + timedelta(seconds=self.config.enrollment_ttl_seconds)
        return token

    async def enroll(self, token: str) -> Enrolled:
        """Trade an enrollment token for the machine's credential; Unauthorized for a wrong, used or
        expired token. A machine enrolled again gets a new credential (the old one stops working)."""
        digest = _digest(token)
        async with self.sessionmaker() as db, db.begin():
            machine = (
                await db.execute(select(Machine).where(Machine.enrollment_hash == digest).with_for_update())
            ).scalar_one_or_none()
            if machine is None or not hmac.compare_digest(machine.enrollment_hash or "", digest):
                raise Unauthorized("enrollment token: unknown or already used; ask an admin for a new one")
            expires = machine.enrollment_expires_at
            machine.enrollment_hash = None
            machine.enrollment_expires_at = None
            if expires is None or expires <= utcnow():
                raise _Expired(machine.id)
            credential = "machine-" + secrets.token_urlsafe(32)
            machine.credential_hash = _digest(credential)
            machine_id = machine.id
        self.server.revoke(machine_id)  # a tunnel on the credential it replaces ends now
        log.info("machine %s enrolled", machine_id)
        return Enrolled(
            machine_id=machine_id,
            credential=credential,
            tunnel_address=self.tunnel_address,
            tunnel_tls=self.config.tls_cert is not None,
        )

    def revoke(self, machine: Machine) -> None:
        """Forget the machine's credential (the caller commits) and close its tunnel."""
        machine.credential_hash = None
        machine.enrollment_hash = None
        machine.enrollment_expires_at = None
        self.server.revoke(machine.id)

    # ---- tunnels --------------------------------------------------------------------------------

    def channel(self, machine_id: str) -> TunnelChannel:
        return self.server.channel(machine_id)

    def online(self, machine_id: str) -> bool:
        return self.server.connection(machine_id) is not None

    async def _authenticate(self, credential: str) -> str | None:
        digest = _digest(credential)
        async with self.sessionmaker() as db:
            row = (
                await db.execute(
                    select(Machine.id, Machine.credential_hash).where(
                        Machine.credential_hash == digest, Machine.dial_out.is_(True)
                    )
                )
            ).first()
        if row is None or not hmac.compare_digest(row.credential_hash or "", digest):
            return None
        return row.id

    async def _record(self, connection: TunnelConnection, is_open: bool) -> None:
        now = utcnow()
        async with self.sessionmaker() as db, db.begin():
            if is_open:
                values = {"tunnel_replica": self.replica, "connected_since": now, "last_seen": now}
                await db.execute(update(Machine).where(Machine.id == connection.machine_id).values(**values))
            else:
                await db.execute(
                    update(Machine)
                    .where(Machine.id == connection.machine_id, Machine.tunnel_replica == self.replica)
                    .values(tunnel_replica=None, connected_since=None, last_seen=now)
                )


class _Expired(Unauthorized):
    def __init__(self, machine_id: str) -> None:
        super().__init__(
            f"enrollment token: expired; ask an admin for a new one (POST /api/v1/machines/{machine_id}/enrollment)"
        )
