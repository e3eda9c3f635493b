"""Bearer tokens: random, shown once, stored as SHA-256 hashes; a FastAPI dependency resolves the caller.

Tokens are 256-bit random strings, so a fast hash is right (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from controlplane.db.models import Token, new_id

__all__ = ["Principal", "create_token", "current_principal", "generate_token", "hash_token", "require_admin"]

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


async def create_token(db: AsyncSession, owner: str, *, is_admin: bool = False, name: str | None = None) -> tuple[Token, str]:
    """Store a new token's hash (caller commits); returns the row and the plain token (shown once)."""
    if not owner or not owner.strip():
        raise ValueError("owner must not be empty")
    plain = generate_token()
    row = Token(id=new_id("tok"), token_hash=hash_token(plain), owner=owner.strip(), is_admin=is_admin, name=name)
    db.add(row)
    return row, plain


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal:
    """Resolve `Authorization: Bearer <token>` to a Principal, or answer 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
    digest = hash_token(token.strip())
    async with request.app.state.sessionmaker() as db:
        row = (await db.execute(select(Token).where(Token.token_hash == digest))).scalar_one_or_none()
    # The lookup is by hash; compare again in constant time so the check itself never short-circuits.
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise _unauthorized("invalid token")
    principal = Principal(owner=row.owner, is_admin=row.is_admin, token_id=row.id)
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Like current_principal, but only admin tokens pass (others get 403)."""
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail="this endpoint needs an admin token")
    return principal
