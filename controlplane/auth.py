"""Bearer tokens: random, shown once, stored as SHA-256 hashes; a FastAPI dependency resolves the caller.

Tokens are 256-bit random strings, so a fast hash is right (no password stretching needed).
Resolved tokens are remembered for a few seconds (TokenCache) so a read costs no token query; revoking
through the API drops the token from the cache at once (another process's revocation is seen within
the cache's time to live).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.db.models import Token, new_id

__all__ = [
    "Principal",
    "TokenCache",
    "create_token",
    "current_principal",
    "generate_token",
    "hash_token",
    "require_admin",
    "token_cache",
]

TOKEN_PREFIX = "berth_"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    owner: str
    is_admin: bool
    token_id: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    db: AsyncSession, owner: str, *, is_admin: bool = False, name: str | None = None
) -> tuple[Token, str]:
    """Store a new token's hash (caller commits); returns the row and the plain token (shown once)."""
    if not owner or not owner.strip():
        raise ValueError("owner must not be empty")
    plain = generate_token()
    row = Token(id=new_id("tok"), token_hash=hash_token(plain), owner=owner.strip(), is_admin=is_admin, name=name)
    db.add(row)
    return row, plain


class TokenCache:
    """Token hash → Principal for `ttl` seconds (only tokens that resolved; bounded in size)."""

    def __init__(self, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}
        # Revoked token ids, so a look-up racing the revocation cannot put the token back.
        self._revoked: set[str] = set()

    def get(self, digest: str) -> Principal | None:
        hit = self._entries.get(digest)
        if hit is None:
            return None
        if hit[1] < time.monotonic():
            self._entries.pop(digest, None)
            return None
        return hit[0]

    def put(self, digest: str, principal: Principal) -> None:
        if principal.token_id in self._revoked:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (principal, time.monotonic() + self.ttl)

    def drop_token(self, token_id: str) -> None:
        """Forget a revoked token at once."""
        self._revoked.add(token_id)
        for digest in [d for d, (p, _) in self._entries.items() if p.token_id == token_id]:
            self._entries.pop(digest, None)


def token_cache(app: FastAPI) -> TokenCache:
    """The app's TokenCache."""
    return app.state.services.token_cache


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal:
    """Resolve `Authorization: Bearer <token>` to a Principal, or answer 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
    digest = hash_token(token.strip())
    cache = token_cache(request.app)
    principal = cache.get(digest)
    if principal is None:
        async with request.app.state.services.sessionmaker() as db:
            row = (await db.execute(select(Token).where(Token.token_hash == digest))).scalar_one_or_none()
        # The lookup is by hash; compare again in constant time so the check itself never short-circuits.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise _unauthorized("invalid token")
        principal = Principal(owner=row.owner, is_admin=row.is_admin, token_id=row.id)
        cache.put(row.token_hash, principal)
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Like current_principal, but only admin tokens pass (others get 403)."""
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail="this endpoint needs an admin token")
    return principal
