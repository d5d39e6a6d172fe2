"""Agents' keys: one ``unitya_...`` key per host, traded once for an enrollment token.

An agent key works like an external plugin's key (:mod:`unity.auth.plugin_keys`):
only the SHA-256 of its secret is stored (:mod:`unity.auth.bearer`), it is
compared in constant time, a verified key is remembered for
``KEY_CACHE_SECONDS`` so a metric batch costs no key lookup, and a revocation
forgets it at once in this process (within ``KEY_CACHE_SECONDS`` on other
hubs). It differs in what it may do: it speaks for a host, so it works on the
agent API and on the ingest endpoints of that host's plugin instances
(:class:`unity.auth.access.Requirement`).

A join that proposes its key's secret can be retried: the same enrollment
token, host id and secret find the key the first attempt issued
(:func:`find_proposed_agent_key`), as a plugin registration does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth import bearer
from unity.auth.external import IssuedSecret
from unity.auth.plugin_keys import LAST_USED_EVERY, KeyCache, forget_on_commit
from unity.storage.db import Database
from unity.storage.models import AgentKey
from unity.storage.types import utcnow
from unity_sdk import AGENT_KEY_PREFIX

__all__ = [
    "VerifiedAgentKey",
    "authenticate_agent_key",
    "find_proposed_agent_key",
    "issue_agent_key",
    "revoke_agent_key",
    "revoke_agent_keys",
    "verify_agent_key",
]


@dataclass(frozen=True)
class VerifiedAgentKey:
    """A live agent key: its id and the host it speaks for."""

    id: str
    host_id: str

    @property
    def owner(self) -> str:
        return self.host_id


_cache: KeyCache[VerifiedAgentKey] = KeyCache()


async def issue_agent_key(
    session: AsyncSession, *, host_id: str, enrollment_id: str | None, secret: str | None = None
) -> IssuedSecret:
    """A new key for the agent of ``host_id``; ``secret`` is one the agent proposed
    (only its hash is stored), else a fresh one."""
    key_id, value, secret_hash = bearer.issue(AGENT_KEY_PREFIX, secret)
    session.add(
        AgentKey(
            id=key_id,
            host_id=host_id,
            secret_hash=secret_hash,
            enrollment_token_id=enrollment_id,
            created_at=utcnow(),
        )
    )
    await session.flush()
    return IssuedSecret(key_id, value)


async def find_proposed_agent_key(
    session: AsyncSession, *, host_id: str, enrollment_id: str, secret: str
) -> IssuedSecret | None:
    """The live key an earlier join issued for this token, host id and proposed
    secret: what a retry of that join gets back."""
    key_id = await session.scalar(
        select(AgentKey.id).where(
            AgentKey.host_id == host_id,
            AgentKey.enrollment_token_id == enrollment_id,
            AgentKey.secret_hash == bearer.hash_secret(secret),
            AgentKey.revoked_at.is_(None),
        )
    )
    if key_id is None:
        return None
    return IssuedSecret(key_id, bearer.compose(AGENT_KEY_PREFIX, key_id, secret))


async def verify_agent_key(session: AsyncSession, value: str) -> AgentKey | None:
    """The live key row ``value`` names, from the database; refreshes ``last_used_at``
    when it is over a minute old."""
    parsed = bearer.parse(AGENT_KEY_PREFIX, value)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = await session.get(AgentKey, key_id)
    if row is None or row.revoked_at is not None or not bearer.matches(secret, row.secret_hash):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = now
    return row


async def authenticate_agent_key(db: Database, value: str) -> VerifiedAgentKey | None:
    """The live key ``value`` names: remembered, else looked up (and remembered)."""
    parsed = bearer.parse(AGENT_KEY_PREFIX, value)
    if parsed is None:
        return None
    remembered = _cache.get(*parsed)
    if remembered is not None:
        return remembered
    async with db.session() as session:
        row = await verify_agent_key(session, value)
        if row is None:
            return None
        key, secret_hash = VerifiedAgentKey(row.id, row.host_id), row.secret_hash
    _cache.put(key, secret_hash)
    return key


async def revoke_agent_key(session: AsyncSession, key_id: str) -> bool:
    """Revoke one key; False when there is no such live key."""
    row = await session.get(AgentKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    forget_on_commit(session, lambda: _cache.forget(key_id=key_id))
    return True


async def revoke_agent_keys(session: AsyncSession, host_id: str) -> int:
    """Revoke every live key of the agent of ``host_id``; how many were live.

    Call it before deleting a host: the cascade removes the key rows, but only
    a revocation makes this hub forget a key it remembers."""
    forget_on_commit(session, lambda: _cache.forget(owner=host_id))
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(AgentKey)
            .where(AgentKey.host_id == host_id, AgentKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount
