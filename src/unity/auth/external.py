"""Credentials of external plugins: enrollment tokens and per-plugin API keys.

An admin creates an enrollment token (expiring; single- or multi-use). An
external plugin trades it once for its own API key (``unityk_...``), which
works only for that plugin's id and can be revoked on its own.

A use of a token is claimed with one conditional ``UPDATE`` whose row count
says whether it was won: that is atomic on SQLite (where ``SELECT ... FOR
UPDATE`` locks nothing) as well as on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth import bearer
from unity.auth.keys import IssuedSecret
from unity.auth.plugin_keys import PLUGIN_KEYS
from unity.storage.models import EnrollmentToken, Plugin, PluginApiKey
from unity.storage.types import utcnow
from unity_sdk import ENROLLMENT_PREFIX

__all__ = [
    "IssuedSecret",
    "TakeoverTargetError",
    "authenticate_enrollment",
    "claim_enrollment_use",
    "create_enrollment",
    "find_proposed_key",
    "issue_plugin_key",
    "list_enrollments",
    "list_plugin_keys",
    "revoke_enrollment",
    "revoke_plugin_key",
    "revoke_plugin_keys",
]


class TakeoverTargetError(ValueError):
    """A takeover token was asked for an id that is not an external plugin."""


async def create_enrollment(
    session: AsyncSession,
    *,
    name: str,
    expires_in: timedelta,
    max_uses: int | None = 1,
    takeover: str | None = None,
) -> tuple[EnrollmentToken, str]:
    """A new enrollment token row and its value (shown once).

    ``takeover`` makes it a token for that one plugin id only, whose
    registration takes the id over from its current owner (its keys are
    revoked then). ``TakeoverTargetError`` when no external plugin has that id.
    """
    if takeover is not None:
        target = await session.get(Plugin, takeover)
        if target is None or not target.external:
            raise TakeoverTargetError(f"no external plugin with id {takeover!r} to take over")
    token_id, value, secret_hash = bearer.issue(ENROLLMENT_PREFIX)
    row = EnrollmentToken(
        id=token_id,
        name=name,
        secret_hash=secret_hash,
        created_at=utcnow(),
        expires_at=utcnow() + expires_in,
        max_uses=max_uses,
        uses=0,
        takeover_plugin_id=takeover,
    )
    session.add(row)
    await session.flush()
    return row, value


async def authenticate_enrollment(session: AsyncSession, value: str) -> EnrollmentToken | None:
    """The token ``value`` names, unless it is unknown, forged or revoked.

    Expiry and uses are not checked here: a retried registration that only
    repeats an earlier one spends nothing; :func:`claim_enrollment_use` checks
    them for every new registration.
    """
    parsed = bearer.parse(ENROLLMENT_PREFIX, value)
    if parsed is None:
        return None
    token_id, secret = parsed
    row = await session.get(EnrollmentToken, token_id)
    if row is None or not bearer.matches(secret, row.secret_hash) or row.revoked_at is not None:
        return None
    return row


async def claim_enrollment_use(session: AsyncSession, token_id: str) -> bool:
    """Spend one use of a live token; False when it is expired, revoked or used up.

    The check and the increment are one statement, so concurrent registrations
    can never spend more uses than the token has. The claim is part of the
    caller's transaction: rolled back, the use is not spent.
    """
    statement = (
        update(EnrollmentToken)
        .where(
            EnrollmentToken.id == token_id,
            EnrollmentToken.revoked_at.is_(None),
            EnrollmentToken.expires_at > utcnow(),
            or_(
                EnrollmentToken.max_uses.is_(None),
                EnrollmentToken.uses < EnrollmentToken.max_uses,
            ),
        )
        .values(uses=EnrollmentToken.uses + 1)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], await session.execute(statement))
    claimed = result.rowcount == 1
    if claimed:
        # The identity map still holds the count read before the update.
        row = await session.get(EnrollmentToken, token_id)
        if row is not None:
            await session.refresh(row)
    return claimed


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
    session: AsyncSession,
    *,
    plugin_id: str,
    hostname: str,
    enrollment_id: str | None,
    secret: str | None = None,
) -> IssuedSecret:
    """A new key for ``plugin_id``; ``secret`` is one the plugin proposed (only its
    hash is stored), else a fresh one."""
    return await PLUGIN_KEYS.issue(
        session, owner=plugin_id, enrollment_id=enrollment_id, secret=secret, hostname=hostname
    )


async def find_proposed_key(
    session: AsyncSession, *, plugin_id: str, enrollment_id: str, secret: str
) -> IssuedSecret | None:
    """The live key an earlier registration issued for this token, id and proposed
    secret: what a retry of that registration gets back."""
    return await PLUGIN_KEYS.find_proposed(
        session, owner=plugin_id, enrollment_id=enrollment_id, secret=secret
    )


async def list_plugin_keys(session: AsyncSession, plugin_id: str) -> list[PluginApiKey]:
    rows = await session.scalars(
        select(PluginApiKey)
        .where(PluginApiKey.plugin_id == plugin_id)
        .order_by(PluginApiKey.created_at)
    )
    return list(rows)


async def revoke_plugin_key(session: AsyncSession, *, plugin_id: str, key_id: str) -> bool:
    """Revoke one key of ``plugin_id``; False when it has no such live key."""
    return await PLUGIN_KEYS.revoke(session, key_id, owner=plugin_id)


async def revoke_plugin_keys(session: AsyncSession, plugin_id: str) -> int:
    """Revoke every live key of ``plugin_id``; how many were live."""
    return await PLUGIN_KEYS.revoke_all(session, plugin_id)


def expired(row: EnrollmentToken, now: datetime | None = None) -> bool:
    return row.expires_at <= (now or utcnow())
