"""systemd service notifications (sd_notify protocol), without libsystemd.

`notify("READY=1")` sends a datagram to `$NOTIFY_SOCKET` when systemd set one;
outside systemd it does nothing and returns False.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["notify", "watchdog_interval"]

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1\\nSTATUS=listening") to systemd; True when sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address[0] == "@":  # abstract namespace socket
        address = "\0" + address[1:]
    elif address[0] != "/":
        log.warning("NOTIFY_SOCKET %r is neither a path nor an abstract socket; ignored", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """The systemd watchdog timeout in seconds for this process, or None when off."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC %r is not an integer; watchdog off", usec)
        return None
    return value / 1_000_000 if value > 0 else None
