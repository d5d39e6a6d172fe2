"""Agents' keys: one ``unitya_...`` key per host, traded once for an enrollment token.

An agent key is one kind of :mod:`unity.auth.keys`, like an external plugin's
key: only the SHA-256 of its secret is stored, a verified key is remembered for
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

from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth.keys import IssuedSecret, KeyKind
from unity.storage.db import Database
from unity.storage.models import AgentKey
from unity_sdk import AGENT_KEY_PREFIX

__all__ = [
    "AGENT_KEYS",
    "VerifiedAgentKey",
    "authenticate_agent_key",
    "find_proposed_agent_key",
    "issue_agent_key",
    "revoke_agent_keys",
]


@dataclass(frozen=True)
class VerifiedAgentKey:
    """A live agent key: its id and the host it speaks for."""

    id: str
    host_id: str

    @property
    def owner(self) -> str:
        return self.host_id


AGENT_KEYS: KeyKind[AgentKey, VerifiedAgentKey] = KeyKind(
    prefix=AGENT_KEY_PREFIX, model=AgentKey, owner="host_id", verified=VerifiedAgentKey
)


async def issue_agent_key(
    session: AsyncSession, *, host_id: str, enrollment_id: str | None, secret: str | None = None
) -> IssuedSecret:
    """A new key for the agent of ``host_id``; ``secret`` is one the agent proposed
    (only its hash is stored), else a fresh one."""
    return await AGENT_KEYS.issue(
        session, owner=host_id, enrollment_id=enrollment_id, secret=secret
    )


async def find_proposed_agent_key(
    session: AsyncSession, *, host_id: str, enrollment_id: str, secret: str
) -> IssuedSecret | None:
    """The live key an earlier join issued for this token, host id and proposed
    secret: what a retry of that join gets back."""
    return await AGENT_KEYS.find_proposed(
        session, owner=host_id, enrollment_id=enrollment_id, secret=secret
    )


async def authenticate_agent_key(db: Database, value: str) -> VerifiedAgentKey | None:
    """The live key ``value`` names: remembered, else looked up (and remembered)."""
    return await AGENT_KEYS.authenticate(db, value)


async def revoke_agent_keys(session: AsyncSession, host_id: str) -> int:
    """Revoke every live key of the agent of ``host_id``; how many were live.

    Call it before deleting a host: the cascade removes the key rows, but only
    a revocation makes this hub forget a key it remembers."""
    return await AGENT_KEYS.revoke_all(session, host_id)
