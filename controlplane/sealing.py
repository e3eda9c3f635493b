"""Encryption at rest for machine daemon tokens (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from env BERTH_SECRET_KEY, else from `secret_key_file` (default <state_dir>/secret.key,
created with mode 0600 on first start). Control planes sharing one database must share the key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["Sealer", "load_sealer"]

_PREFIX = "fernet:"


class Sealer:
    """Seals and opens short secrets with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plain: str | None) -> str | None:
        if not plain:
            return None
        return _PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        """The plain secret; values stored before sealing existed are returned as they are."""
        if not stored:
            return None
        if not stored.startswith(_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(_PREFIX) :].encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a machine token cannot be decrypted: wrong secret key (BERTH_SECRET_KEY / secret_key_file)"
            ) from None


def load_sealer(key_file: Path, env: dict[str, str] | None = None) -> Sealer:
    """The Sealer for env BERTH_SECRET_KEY or `key_file` (created when missing)."""
    env = dict(os.environ) if env is None else env
    if env.get("BERTH_SECRET_KEY"):
        return Sealer(env["BERTH_SECRET_KEY"].encode())
    if key_file.exists():
        return Sealer(key_file.read_bytes().strip())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return Sealer(key)
