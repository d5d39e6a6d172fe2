"""Hub tokens: ``unity_<id>_<secret>``, scoped, hashed at rest, revocable.

The prefix makes a leaked token recognisable (secret scanners, log greps). The
id is the database key; only the SHA-256 of the 256-bit random secret is
stored, and the comparison is constant-time. A token is shown once, when it is
created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import ApiToken
from unity.storage.types import utcnow

__all__ = [
    "TOKEN_PREFIX",
    "IssuedToken",
    "Scope",
    "create_token",
    "list_tokens",
    "revoke_token",
    "verify_token",
]

TOKEN_PREFIX = "unity_"
_TOKEN_RE = re.compile(r"^unity_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


class Scope(StrEnum):
    """What a token may do; ``admin`` includes ``read``."""

    READ = "read"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        return self is Scope.ADMIN or needed is Scope.READ


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: ``value`` is the only copy of the secret."""

    id: str
    name: str
    scope: Scope
    value: str
    expires_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    session: AsyncSession,
    *,
    name: str,
    scope: Scope,
    expires_at: datetime | None = None,
) -> IssuedToken:
    token_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            id=token_id,
            name=name,
            scope=scope.value,
            secret_hash=_hash(secret),
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )
    await session.flush()
    return IssuedToken(token_id, name, scope, f"{TOKEN_PREFIX}{token_id}_{secret}", expires_at)


async def verify_token(session: AsyncSession, value: str) -> ApiToken | None:
    """The live token row matching ``value``, or None (malformed, unknown, revoked, expired)."""
    match = _TOKEN_RE.match(value)
    if match is None:
        return None
    token_id, secret = match.groups()
    row = await session.get(ApiToken, token_id)
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    # Write at most once a minute per token, so reads stay reads.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return row


async def list_tokens(session: AsyncSession, *, include_revoked: bool = False) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created_at)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    return list((await session.scalars(stmt)).all())


async def revoke_token(session: AsyncSession, token_id: str) -> bool:
    """Revoke by id; False when there is no such live token."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


async def has_admin_token(session: AsyncSession) -> bool:
    stmt = select(ApiToken.id).where(
        ApiToken.scope == Scope.ADMIN.value, ApiToken.revoked_at.is_(None)
    )
    return (await session.scalars(stmt.limit(1))).first() is not None
