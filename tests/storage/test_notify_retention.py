"""Retention removes the delivery log and finished notices past ``notify_log_days``;
newer entries and notices still to be sent stay."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from unity.storage.models import NotificationDelivery, NotificationOutbox
from unity.storage.types import utcnow


async def test_old_deliveries_and_finished_notices_are_deleted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await client.post(
        "/api/alerts/channels", json={"name": "phone", "url": "json://127.0.0.1:9/hook"}
    )
    assert made.status_code == 201, made.text
    now = utcnow()
    days = app.state.settings.notify_log_days
    old, recent = now - timedelta(days=days + 1), now - timedelta(days=days - 1)
    async with app.state.db.session() as session:
        channel_id = made.json()["id"]
        for title, at in (("old", old), ("recent", recent)):
            session.add(
                NotificationDelivery(
                    channel_id=channel_id, channel="phone", kind="apprise", at=at,
                    state="failed", title=title, error="refused",
                )
            )  # fmt: skip
        for state, created in (
            ("failed", old),
            ("dropped", old),
            ("pending", old),
            ("claimed", old),
            ("failed", recent),
        ):
            session.add(
                NotificationOutbox(
                    channel_id=channel_id, group_key=f"{state}-{created:%j}", fingerprint="f",
                    status="firing", severity="warning", notice={}, state=state,
                    created_at=created, due_at=created,
                )
            )  # fmt: skip
    await app.state.retention.purge(now)
    async with app.state.db.session() as session:
        log = (await session.scalars(select(NotificationDelivery.title))).all()
        outbox = (
            await session.execute(select(NotificationOutbox.state, NotificationOutbox.created_at))
        ).all()
    assert log == ["recent"]
    kept = sorted((state, created == recent) for state, created in outbox)
    # Notices still to be sent are never lost to retention, however old.
    assert kept == [("claimed", False), ("failed", True), ("pending", False)]


async def test_the_window_is_the_setting(app: FastAPI) -> None:
    now = utcnow()
    app.state.settings.notify_log_days = 3
    async with app.state.db.session() as session:
        for title, age in (("four days", 4), ("two days", 2)):
            session.add(
                NotificationDelivery(
                    channel="gone", kind="apprise", at=now - timedelta(days=age), state="sent",
                    title=title,
                )
            )  # fmt: skip
    await app.state.retention.purge(now)
    async with app.state.db.session() as session:
        assert (await session.scalars(select(NotificationDelivery.title))).all() == ["two days"]
