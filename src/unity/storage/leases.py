"""Lease queries: claim, renew and release work shared by several hubs (PostgreSQL).

A lease is a row of ``hub_leases``. :func:`claim` takes it in one statement, an
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that PostgreSQL runs atomically:
the row is created, or taken over when its holder is this hub or it expired,
and a ``RETURNING`` row says the claim won. Concurrent claims queue on the
row's lock and re-check the condition on the newest version, so exactly one
wins. Expiry is judged by the database's ``now()``: hubs' clocks never matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import HubLease

__all__ = ["claim", "holders", "release", "renew"]


async def claim(session: AsyncSession, *, name: str, holder: str, seconds: float) -> bool:
    """Take or renew lease ``name`` for ``seconds``; False when another hub holds it."""
    statement = insert(HubLease).values(
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
