"""What the hub shows about notifications: its channels and the delivery log.

The API routes (``/api/alerts/channels``, ``/api/alerts/deliveries``) and the
channels page both read through these functions. A channel row carries no URL
(it is sealed in the credentials store); callers shape it with
:func:`unity.notify.store.channel_out`, which shows only its scheme.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import NotificationChannel, NotificationDelivery

__all__ = ["channels", "deliveries"]


async def channels(session: AsyncSession) -> list[NotificationChannel]:
    """Every channel, by name."""
    rows = await session.scalars(select(NotificationChannel).order_by(NotificationChannel.name))
    return list(rows)


async def deliveries(
    session: AsyncSession,
    *,
    limit: int,
    channel: str | None = None,
    state: str | None = None,
    before: int | None = None,
) -> list[NotificationDelivery]:
    """The delivery log, newest first: ``limit`` entries at most, of one channel
    and/or one state, older than the entry ``before`` (keyset by id)."""
    stmt = select(NotificationDelivery).order_by(NotificationDelivery.id.desc()).limit(limit)
    if channel is not None:
        stmt = stmt.where(NotificationDelivery.channel == channel)
    if state is not None:
        stmt = stmt.where(NotificationDelivery.state == state)
    if before is not None:
        stmt = stmt.where(NotificationDelivery.id < before)
    return list(await session.scalars(stmt))
