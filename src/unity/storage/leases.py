"""Lease queries: claim, renew and release work shared by several hubs (PostgreSQL).

A lease is a row of ``hub_leases``. :func:`claim` takes it in one statement, an
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that PostgreSQL runs atomically:
the row is created, or taken over when its holder is this hub or it expired,
and a ``RETURNING`` row says the claim won. Concurrent claims queue on the
row's lock and re-check the condition on the newest version, so exactly one
wins. Expiry is judged by the database's ``now()``: hubs' clocks never matter.

:class:`HubLeases` is one hub's side of it: its id, and claims that on SQLite
(one hub) are granted at once without a query. The plugins' scheduled runs
build on it (:mod:`unity.plugins.leases`); so does the retention pass.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from unity.settings import Settings
from unity.storage.db import Database, is_unavailable
from unity.storage.dialects import dialect_insert
from unity.storage.models import HubLease

__all__ = [
    "RETENTION_LEASE",
    "ROLLUP_LEASE",
    "HubLeases",
    "claim",
    "holders",
    "hub_identity",
    "release",
    "renew",
]

log = logging.getLogger(__name__)

RETENTION_LEASE = "retention"
ROLLUP_LEASE = "rollups"


def hub_identity(settings: Settings) -> str:
    """``UNITY_HUB_ID``, else host name, process id and a random suffix."""
    if settings.hub_id:
        return settings.hub_id
    return f"{settings.hostname[:100]}-{os.getpid()}-{secrets.token_hex(3)}"


async def claim(session: AsyncSession, *, name: str, holder: str, seconds: float) -> bool:
    """Take or renew lease ``name`` for ``seconds``; False when another hub holds it."""
    statement = dialect_insert(session.get_bind().dialect.name)(HubLease).values(
        name=name, holder=holder, expires_at=func.now() + timedelta(seconds=seconds)
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[HubLease.name],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=or_(HubLease.holder == holder, HubLease.expires_at < func.now()),
    )
    return (await session.execute(upsert.returning(HubLease.name))).first() is not None


async def renew(session: AsyncSession, *, name: str, holder: str, seconds: float) -> bool:
    """Extend lease ``name`` only if ``holder`` still has it (never takes a free one)."""
    result = await session.execute(
        update(HubLease)
        .where(HubLease.name == name, HubLease.holder == holder)
        .values(expires_at=func.now() + timedelta(seconds=seconds))
        .returning(HubLease.name)
    )
    return result.first() is not None


async def release(session: AsyncSession, *, holder: str, names: Iterable[str] | None = None) -> int:
    """Give up leases of ``holder`` (``names``, or all of them); the number released."""
    statement = delete(HubLease).where(HubLease.holder == holder)
    if names is not None:
        statement = statement.where(HubLease.name.in_(list(names)))
    result = await session.execute(statement.returning(HubLease.name))
    return len(result.all())


async def holders(session: AsyncSession) -> dict[str, str]:
    """``{lease: holder}`` of the leases not expired."""
    rows = await session.execute(
        select(HubLease.name, HubLease.holder).where(HubLease.expires_at >= func.now())
    )
    return {row.name: row.holder for row in rows}


class HubLeases:
    """One hub's claims on work shared with other hubs on the same database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.hub_id = hub_identity(settings)
        # SQLite has one hub: every claim is granted without a query.
        self.shared = not db.is_sqlite

    async def claim(self, name: str, seconds: float) -> bool:
        """Take or renew lease ``name`` for ``seconds``; False if another hub holds it."""
        if not self.shared:
            return True
        async with self.db.session() as session:
            return await claim(session, name=name, holder=self.hub_id, seconds=seconds)

    async def release_all(self) -> None:
        """On a clean stop: every lease of this hub goes to the others at once."""
        if not self.shared:
            return
        try:
            async with self.db.session() as session:
                released = await release(session, holder=self.hub_id)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("leases of hub %s not released: database unavailable", self.hub_id)
            return
        if released:
            log.info("hub %s released %d leases", self.hub_id, released)
