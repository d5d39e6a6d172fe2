"""Plugin events: the stored history of every change of a plugin's state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from unity.storage.models import PluginEvent

__all__ = ["list_events", "record_event"]


async def record_event(
    session: AsyncSession | AsyncConnection,
    *,
    plugin_id: str,
    at: datetime,
    previous: str,
    current: str,
    message: str = "",
) -> None:
    await session.execute(
        insert(PluginEvent).values(
            plugin_id=plugin_id, at=at, previous=previous, current=current, message=message
        )
    )


async def list_events(
    session: AsyncSession, *, plugin_id: str, limit: int = 100
) -> list[PluginEvent]:
    """Newest first."""
    stmt = (
        select(PluginEvent)
        .where(PluginEvent.plugin_id == plugin_id)
        .order_by(PluginEvent.at.desc(), PluginEvent.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())
