"""Credentials of external plugins: enrollment tokens and per-plugin API keys.

An admin creates an enrollment token (expiring; single- or multi-use). An
external plugin trades it once for its own API key (``unityk_...``), which
works only for that plugin's id and can be revoked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth import bearer
from unity.storage.models import EnrollmentToken, PluginApiKey
from unity.storage.types import utcnow
from unity_sdk.wire import API_KEY_PREFIX, ENROLLMENT_PREFIX

__all__ = [
    "IssuedSecret",
    "consume_enrollment",
    "create_enrollment",
    "issue_plugin_key",
    "list_enrollments",
    "list_plugin_keys",
    "revoke_enrollment",
    "revoke_plugin_key",
    "verify_plugin_key",
]


@dataclass(frozen=True)
class IssuedSecret:
    id: str
    value: str


async def create_enrollment(
    session: AsyncSession,
    *,
    name: str,
    expires_in: timedelta,
    max_uses: int | None = 1,
) -> tuple[EnrollmentToken, str]:
    """A new enrollment token row and its value (shown once)."""
    token_id, value, secret_hash = bearer.issue(ENROLLMENT_PREFIX)
    row = EnrollmentToken(
        id=token_id,
        name=name,
        secret_hash=secret_hash,
        created_at=utcnow(),
        expires_at=utcnow() + expires_in,
        max_uses=max_uses,
        uses=0,
    )
    session.add(row)
    await session.flush()
    return row, value


async def consume_enrollment(session: AsyncSession, value: str) -> EnrollmentToken | None:
    """Use one registration of the token; None when invalid, expired, revoked or used up."""
    parsed = bearer.parse(ENROLLMENT_PREFIX, value)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = await session.get(EnrollmentToken, token_id, with_for_update=True)
    if row is None or not bearer.matches(secret, row.secret_hash):
        return None
    if row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if row.max_uses is not None and row.uses >= row.max_uses:
        return None
    row.uses += 1
    return row


async def list_enrollments(session: AsyncSession) -> list[EnrollmentToken]:
    rows = await session.scalars(select(EnrollmentToken).order_by(EnrollmentToken.created_at))
    return list(rows)


async def revoke_enrollment(session: AsyncSession, token_id: str) -> bool:
    row = await session.get(EnrollmentToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


async def issue_plugin_key(
    session: AsyncSession, *, plugin_id: str, hostname: str, enrollment_id: str | None
) -> IssuedSecret:
    key_id, value, secret_hash = bearer.issue(API_KEY_PREFIX)
    session.add(
        PluginApiKey(
            id=key_id,
            plugin_id=plugin_id,
            secret_hash=secret_hash,
            enrollment_token_id=enrollment_id,
            hostname=hostname,
            created_at=utcnow(),
        )
    )
    await session.flush()
    return IssuedSecret(key_id, value)


async def verify_plugin_key(session: AsyncSession, value: str) -> PluginApiKey | None:
    parsed = bearer.parse(API_KEY_PREFIX, value)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = await session.get(PluginApiKey, key_id)
    if row is None or row.revoked_at is not None or not bearer.matches(secret, row.secret_hash):
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return row


async def list_plugin_keys(session: AsyncSession, plugin_id: str) -> list[PluginApiKey]:
    rows = await session.scalars(
        select(PluginApiKey)
        .where(PluginApiKey.plugin_id == plugin_id)
        .order_by(PluginApiKey.created_at)
    )
    return list(rows)


async def revoke_plugin_key(session: AsyncSession, *, plugin_id: str, key_id: str) -> bool:
    row = await session.get(PluginApiKey, key_id)
    if row is None or row.plugin_id != plugin_id or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def expired(row: EnrollmentToken, now: datetime | None = None) -> bool:
    return row.expires_at <= (now or utcnow())
