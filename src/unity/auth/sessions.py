"""Dashboard sessions: a hub token pasted once, then an HttpOnly cookie.

Logging in with a hub token issues a *session token*: an ordinary hub token
(hashed, revocable, expiring) named ``web-session:<id of the token used>``,
with the same scope. Its value lives only in the ``unity_session`` cookie
(HttpOnly, SameSite=Strict, Secure over https), so page scripts never see a
secret. Being a database row, a session survives restarts, works across hub
processes sharing one database, and ends for real on logout (revoked). It
also ends when the token it came from is revoked or expires.

CSRF: every state-changing request made with the cookie must carry the
session's CSRF token (an HMAC keyed by the session secret) in the
``X-CSRF-Token`` header (forms: a ``csrf`` field); cross-origin requests
are refused outright. The API accepts the cookie in :mod:`unity.api.deps`;
the dashboard sets and clears it in :mod:`unity.web.session`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth.tokens import SESSION_TOKEN_PREFIX, Scope, create_token, verify_token
from unity.storage.db import Database
from unity.storage.models import ApiToken
from unity.storage.types import utcnow

__all__ = [
    "CSRF_HEADER",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "WebSession",
    "csrf_matches",
    "end_dead_sessions",
    "end_session",
    "resolve_session",
    "start_session",
]

SESSION_COOKIE = "unity_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_LIFETIME = timedelta(days=7)
SESSION_NAME = SESSION_TOKEN_PREFIX
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WebSession:
    """A live dashboard session.

    ``token_id`` is the token the operator logged in with (it is who acts, in
    audit logs); ``session_id`` is the session token's own id.
    """

    token_id: str
    token_name: str
    session_id: str
    scope: Scope
    csrf: str
    expires_at: datetime

    @property
    def admin(self) -> bool:
        return self.scope is Scope.ADMIN


def _csrf_for(value: str) -> str:
    return hmac.new(value.encode(), b"unity dashboard csrf", hashlib.sha256).hexdigest()


def _live(row: ApiToken, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


async def _end_dead_sessions(session: AsyncSession, now: datetime) -> None:
    """Revoke sessions that expired or whose login token died, so they never count
    as live tokens anywhere (such as the start-up check for an admin token)."""
    rows = await session.scalars(
        select(ApiToken).where(
            ApiToken.name.startswith(SESSION_NAME), ApiToken.revoked_at.is_(None)
        )
    )
    for row in rows.all():
        parent = await session.get(ApiToken, row.name.removeprefix(SESSION_NAME))
        if not _live(row, now) or parent is None or not _live(parent, now):
            row.revoked_at = now


async def end_dead_sessions(db: Database) -> None:
    """Run at start-up: sessions of revoked or expired tokens end for good."""
    async with db.session() as session:
        await _end_dead_sessions(session, utcnow())


async def start_session(db: Database, token_value: str) -> tuple[str, WebSession] | None:
    """Trade a hub token for a new session: ``(cookie value, session)``, None if refused.

    A session token is not accepted here: log in with the token itself.
    """
    async with db.session() as session:
        token = await verify_token(session, token_value.strip())
        if token is None or token.name.startswith(SESSION_NAME):
            return None
        now = utcnow()
        await _end_dead_sessions(session, now)
        expires = now + SESSION_LIFETIME
        if token.expires_at is not None:
            expires = min(expires, token.expires_at)
        issued = await create_token(
            session, name=f"{SESSION_NAME}{token.id}", scope=Scope(token.scope), expires_at=expires
        )
        return issued.value, WebSession(
            token_id=token.id,
            token_name=token.name,
            session_id=issued.id,
            scope=Scope(token.scope),
            csrf=_csrf_for(issued.value),
            expires_at=expires,
        )


async def resolve_session(db: Database, value: str) -> WebSession | None:
    """The live session a cookie value names, None for anything else."""
    async with db.session() as session:
        row = await verify_token(session, value)
        if row is None or not row.name.startswith(SESSION_NAME):
            return None
        parent = await session.get(ApiToken, row.name.removeprefix(SESSION_NAME))
        now = utcnow()
        if parent is None or not _live(parent, now):
            row.revoked_at = now
            return None
        assert row.expires_at is not None
        return WebSession(
            token_id=parent.id,
            token_name=parent.name,
            session_id=row.id,
            scope=Scope(row.scope),
            csrf=_csrf_for(value),
            expires_at=row.expires_at,
        )


async def end_session(db: Database, value: str) -> None:
    """Log out: revoke the session token named by the cookie value."""
    async with db.session() as session:
        row = await verify_token(session, value)
        if row is not None and row.name.startswith(SESSION_NAME):
            row.revoked_at = utcnow()


def csrf_matches(web: WebSession, sent: str) -> bool:
    return hmac.compare_digest(sent.encode(), web.csrf.encode())
