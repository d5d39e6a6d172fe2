"""Deleting rows nobody needs any more: a plugin's history past its retention
(in bounded chunks), old batch receipts, ended sessions, old delivery-log
entries and notices that will never go out.

Called by the retention pass (:mod:`unity.retention`). Each function works in
the caller's transaction and returns how many rows it removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import (
    ApiToken,
    BatchReceipt,
    NotificationDelivery,
    NotificationOutbox,
    PluginEvent,
    PluginExecution,
    PluginMetric,
)

__all__ = [
    "PLUGIN_HISTORY",
    "purge_batch_receipts",
    "purge_ended_tokens",
    "purge_history_chunk",
    "purge_notifications",
]

# A plugin's history tables, each with the column retention judges its rows by.
PLUGIN_HISTORY: dict[str, Any] = {
    "metrics": (PluginMetric, PluginMetric.timestamp),
    "executions": (PluginExecution, PluginExecution.started_at),
    "events": (PluginEvent, PluginEvent.at),
}

# Outbox rows in these states are finished: never sent again, kept only to be looked at.
FINISHED_NOTICES = ("failed", "dropped")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_history_chunk(
    session: AsyncSession, table: str, *, plugin_id: str, before: datetime, limit: int
) -> int:
    """At most ``limit`` rows of ``table`` (a :data:`PLUGIN_HISTORY` key) of
    ``plugin_id`` older than ``before``; fewer than ``limit`` means none are left.

    The ids come from the (plugin, time) index in a subquery with a LIMIT, so
    one statement -- and the transaction around it -- stays bounded however
    much history the plugin has.
    """
    model, column = PLUGIN_HISTORY[table]
    chunk = (
        select(model.id)
        .where(model.plugin_id == plugin_id, column < before)
        .limit(limit)
        .scalar_subquery()
    )
    result = await session.execute(delete(model).where(model.id.in_(chunk)))
    return _rowcount(result)


async def purge_batch_receipts(session: AsyncSession, *, before: datetime) -> int:
    """Receipts received before ``before``: a retry that old is answered by storing it again."""
    result = await session.execute(delete(BatchReceipt).where(BatchReceipt.received_at < before))
    return _rowcount(result)


async def purge_ended_tokens(session: AsyncSession, *, name_prefix: str, now: datetime) -> int:
    """Tokens named ``name_prefix...`` that were revoked or have expired by ``now``."""
    result = await session.execute(
        delete(ApiToken).where(
            ApiToken.name.startswith(name_prefix, autoescape=True),
            or_(ApiToken.revoked_at.is_not(None), ApiToken.expires_at <= now),
        )
    )
    return _rowcount(result)


async def purge_notifications(session: AsyncSession, *, before: datetime) -> tuple[int, int]:
    """Delivery-log entries from before ``before``, and notices created before it that
    failed for good or were dropped; returns how many of each were removed."""
    log = await session.execute(
        delete(NotificationDelivery).where(NotificationDelivery.at < before)
    )
    notices = await session.execute(
        delete(NotificationOutbox).where(
            NotificationOutbox.state.in_(FINISHED_NOTICES), NotificationOutbox.created_at < before
        )
    )
    return _rowcount(log), _rowcount(notices)
