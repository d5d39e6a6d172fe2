"""Deleting bookkeeping rows nobody needs any more: old batch receipts, ended
sessions, old delivery-log entries and notices that will never go out.

Called by the manager's retention pass next to the metric purge. Each function
works in the caller's transaction and returns how many rows it removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import (
    ApiToken,
    BatchReceipt,
    NotificationDelivery,
    NotificationOutbox,
)

__all__ = ["purge_batch_receipts", "purge_ended_tokens", "purge_notifications"]

# Outbox rows in these states are finished: never sent again, kept only to be looked at.
FINISHED_NOTICES = ("failed", "dropped")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


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
