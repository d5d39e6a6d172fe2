"""Retention also removes batch receipts past the idempotency window and ended
dashboard sessions; live ones stay."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import select

from unity.storage.models import ApiToken, BatchReceipt, Plugin
from unity.storage.types import utcnow

SECRET = "0" * 64


async def test_receipts_past_the_idempotency_window_are_deleted(app: FastAPI) -> None:
    now = utcnow()
    window = app.state.settings.batch_receipt_days
    async with app.state.db.session() as session:
        session.add(
            Plugin(id="nas", name="NAS", version="1.0.0", category="custom", plugin_metadata={})
        )
        await session.flush()
        for batch_id, age in (("old-batch", window + 1), ("recent-batch", window - 1)):
            session.add(
                BatchReceipt(
                    plugin_id="nas",
                    batch_id=batch_id,
                    received_at=now - timedelta(days=age),
                    samples=1,
                )
            )
    await app.state.retention.purge(now)
    async with app.state.db.session() as session:
        kept = (await session.scalars(select(BatchReceipt.batch_id))).all()
    assert kept == ["recent-batch"]


async def test_ended_sessions_are_deleted_and_live_ones_and_other_tokens_kept(
    app: FastAPI,
) -> None:
    now = utcnow()
    rows = [
        ("expired", "web-session:parent", now - timedelta(hours=1), None),
        ("revoked", "web-session:parent", now + timedelta(days=1), now - timedelta(hours=1)),
        ("live", "web-session:parent", now + timedelta(days=1), None),
        ("parent", "ops", None, None),
        ("old-token", "ops-old", now - timedelta(days=1), now - timedelta(days=1)),
    ]
    async with app.state.db.session() as session:
        for token_id, name, expires, revoked in rows:
            session.add(
                ApiToken(
                    id=token_id,
                    name=name,
                    scope="read",
                    secret_hash=SECRET,
                    expires_at=expires,
                    revoked_at=revoked,
                )
            )
    await app.state.retention.purge(now)
    async with app.state.db.session() as session:
        kept = sorted((await session.scalars(select(ApiToken.id))).all())
    # People's tokens stay, revoked or not: the token list shows them.
    assert kept == ["live", "old-token", "parent"]
