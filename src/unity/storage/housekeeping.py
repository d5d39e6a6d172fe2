"""Deleting bookkeeping rows nobody needs any more: old batch receipts, ended sessions.

Called by the manager's retention pass next to the metric purge. Each function
works in the caller's transaction and returns how many rows it removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import ApiToken, BatchReceipt

__all__ = ["purge_batch_receipts", "purge_ended_tokens"]


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
