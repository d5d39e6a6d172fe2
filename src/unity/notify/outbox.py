"""The outbox and the delivery log on the database, shared by every hub.

A notice waits in ``notification_outbox`` once per channel that routes it.
Hubs claim due rows: on PostgreSQL the candidates are locked with ``FOR
UPDATE SKIP LOCKED`` so two hubs never take the same row, and on both
databases the claiming ``UPDATE`` repeats the condition and stamps a claim
token, so a hub delivers only the rows its own statement changed. A hub that
dies holding rows loses them to the others when its lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from unity.storage.db import Database
from unity.storage.models import NotificationDelivery, NotificationOutbox

__all__ = [
    "claim",
    "delivered",
    "failed",
    "log_delivery",
    "recent_messages",
    "release",
]

Outbox = NotificationOutbox


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        Outbox.state == "pending",
        and_(Outbox.state == "claimed", Outbox.claimed_until < now),
    )


async def claim(
    db: Database, *, now: datetime, lease_until: datetime, token: str, limit: int
) -> list[NotificationOutbox]:
    """Take the due rows and the rest of their groups (up to ``limit`` due rows)."""
    due = or_(
        and_(Outbox.state == "pending", Outbox.due_at <= now),
        and_(Outbox.state == "claimed", Outbox.claimed_until < now),
    )
    async with db.writer() as session:
        ready = await session.execute(
            select(Outbox.id, Outbox.channel_id, Outbox.group_key)
            .where(due)
            .order_by(Outbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = ready.all()
        if not rows:
            return []
        ids = {row.id for row in rows}
        groups = {(row.channel_id, row.group_key) for row in rows}
        # Notices that joined those groups since: they go out in the same message.
        more = await session.scalars(
            select(Outbox.id)
            .where(
                Outbox.state == "pending",
                tuple_(Outbox.channel_id, Outbox.group_key).in_(list(groups)),
            )
            .with_for_update(skip_locked=True)
        )
        ids.update(more)
        await session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids), _claimable(now))
            .values(state="claimed", claim=token, claimed_until=lease_until)
            .execution_options(synchronize_session=False)
        )
    async with db.session() as session:
        taken = await session.scalars(
            select(Outbox).where(Outbox.claim == token).order_by(Outbox.id)
        )
        return list(taken)


async def delivered(db: Database, ids: Sequence[int], token: str) -> None:
    """Sent: the rows leave the outbox (the delivery log keeps the message)."""
    async with db.writer() as session:
        await session.execute(delete(Outbox).where(Outbox.id.in_(ids), Outbox.claim == token))


async def failed(
    db: Database,
    rows: Sequence[NotificationOutbox],
    token: str,
    *,
    error: str,
    retry_at: dict[int, datetime],
    max_attempts: int,
) -> int:
    """Not sent: back to pending until ``retry_at[attempts]``, or failed for good after
    ``max_attempts``. Returns how many gave up."""
    gave_up = 0
    async with db.writer() as session:
        for row in rows:
            attempts = row.attempts + 1
            final = attempts >= max_attempts
            gave_up += final
            await session.execute(
                update(Outbox)
                .where(Outbox.id == row.id, Outbox.claim == token)
                .values(
                    state="failed" if final else "pending",
                    claim=None,
                    claimed_until=None,
                    attempts=attempts,
                    due_at=retry_at[attempts] if not final else row.due_at,
                    last_error=error,
                )
                .execution_options(synchronize_session=False)
            )
    return gave_up


async def release(db: Database, ids: Sequence[int], token: str, *, due_at: datetime) -> None:
    """Not attempted (the channel's rate limit is used up): pending again from ``due_at``."""
    async with db.writer() as session:
        await session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids), Outbox.claim == token)
            .values(state="pending", claim=None, claimed_until=None, due_at=due_at)
            .execution_options(synchronize_session=False)
        )


async def drop(db: Database, ids: Sequence[int], token: str, *, reason: str) -> None:
    """Never to be sent (the channel was disabled): kept as ``dropped`` with the reason."""
    async with db.writer() as session:
        await session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids), Outbox.claim == token)
            .values(state="dropped", claim=None, claimed_until=None, last_error=reason)
            .execution_options(synchronize_session=False)
        )


async def recent_messages(
    db: Database, channel_id: int, *, since: datetime
) -> tuple[int, datetime | None]:
    """Messages (not tests) attempted on the channel since ``since``, and the oldest's time."""
    async with db.session() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(NotificationDelivery.at)).where(
                    NotificationDelivery.channel_id == channel_id,
                    NotificationDelivery.test.is_(False),
                    NotificationDelivery.state != "dropped",
                    NotificationDelivery.at >= since,
                )
            )
        ).one()
    return int(count), oldest


async def log_delivery(db: Database, entry: NotificationDelivery) -> NotificationDelivery:
    async with db.writer() as session:
        session.add(entry)
    return entry
