"""Hub tokens for people and scripts: ``unity_<id>_<secret>``, scoped read or admin.

Shown once when created, stored hashed, revocable, optionally expiring
(mechanics in :mod:`unity.auth.bearer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth import bearer
from unity.storage.models import ApiToken
from unity.storage.types import utcnow

__all__ = [
    "SESSION_TOKEN_PREFIX",
    "TOKEN_PREFIX",
    "IssuedToken",
    "Scope",
    "create_token",
    "list_tokens",
    "revoke_token",
    "verify_token",
]

TOKEN_PREFIX = "unity_"
# Dashboard sessions are hub tokens named after this prefix (see unity.web.session).
SESSION_TOKEN_PREFIX = "web-session:"


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


async def create_token(
    session: AsyncSession,
    *,
    name: str,
    scope: Scope,
    expires_at: datetime | None = None,
) -> IssuedToken:
    token_id, value, secret_hash = bearer.issue(TOKEN_PREFIX)
    session.add(
        ApiToken(
            id=token_id,
            name=name,
            scope=scope.value,
            secret_hash=secret_hash,
            created_at=utcnow(),
            expires_at=expires_at,
        )
    )
    await session.flush()
    return IssuedToken(token_id, name, scope, value, expires_at)


async def verify_token(session: AsyncSession, value: str) -> ApiToken | None:
    """The live token row matching ``value``, or None (malformed, unknown, revoked, expired)."""
    parsed = bearer.parse(TOKEN_PREFIX, value)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = await session.get(ApiToken, token_id)
    if row is None or not bearer.matches(secret, row.secret_hash):
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
