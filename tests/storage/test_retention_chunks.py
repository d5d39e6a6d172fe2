"""The retention pass deletes a plugin's history plugin by plugin, in bounded
chunks, each committed on its own: old rows go, recent ones and other plugins'
stay, and the pass never holds one transaction for everything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event, select

from unity.retention import Retention
from unity.storage.db import Database
from unity.storage.leases import HubLeases
from unity.storage.models import Plugin, PluginEvent, PluginExecution, PluginMetric
from unity.storage.types import utcnow

AGES = (0, 3, 40)


def _plugin(plugin_id: str, config: dict[str, Any] | None = None) -> Plugin:
    return Plugin(
        id=plugin_id,
        name=plugin_id,
        version="1.0.0",
        category="custom",
        plugin_metadata={},
        config=config or {},
    )


async def _fill(db: Database, now: datetime) -> None:
    async with db.session() as session:
        session.add(_plugin("nas"))
        session.add(_plugin("router", {"retention_days": 2}))
        await session.flush()
        for plugin_id in ("nas", "router"):
            for age in AGES:
                at = now - timedelta(days=age)
                for copy in range(3):
                    session.add(
                        PluginMetric(
                            plugin_id=plugin_id, host=f"h{copy}", timestamp=at, data={"age": age}
                        )
                    )
                session.add(
                    PluginExecution(
                        plugin_id=plugin_id, started_at=at, status="success", trigger="schedule"
                    )
                )
                session.add(
                    PluginEvent(
                        plugin_id=plugin_id, at=at, previous="idle", current="running", message=""
                    )
                )


@pytest.fixture
def commits(db: Database) -> Iterator[list[int]]:
    """One entry per transaction committed on the app's engine."""
    seen: list[int] = []

    def on_commit(_connection: Any) -> None:
        seen.append(1)

    event.listen(db.engine.sync_engine, "commit", on_commit)
    yield seen
    event.remove(db.engine.sync_engine, "commit", on_commit)


async def test_history_is_deleted_per_plugin_in_committed_chunks(
    app: FastAPI, db: Database, commits: list[int]
) -> None:
    now = utcnow()
    await _fill(db, now)
    retention = Retention(db, app.state.settings, chunk_rows=2)
    commits.clear()
    removed = await retention.purge(now)

    # nas keeps 30 days (the default): only the 40-day-old rows go; router keeps 2 days.
    assert removed["nas"] == (3, 1)
    assert removed["router"] == (6, 2)
    async with db.session() as session:
        metrics = (await session.execute(select(PluginMetric.plugin_id, PluginMetric.data))).all()
        runs = (await session.execute(select(PluginExecution.plugin_id))).all()
        events = (await session.execute(select(PluginEvent.plugin_id))).all()
    ages = sorted((plugin_id, data["age"]) for plugin_id, data in metrics)
    assert ages == [("nas", 0)] * 3 + [("nas", 3)] * 3 + [("router", 0)] * 3
    assert sorted(row.plugin_id for row in runs) == ["nas", "nas", "router"]
    assert sorted(row.plugin_id for row in events) == ["nas", "nas", "router"]
    # A transaction per plugin and chunk: router's 6 old metrics take 4 (the last
    # finds none left), nas's 3 take 2; every other plugin one; the list one and the
    # bookkeeping four. (The app's own background work may commit meanwhile too.)
    async with db.session() as session:
        plugins = len((await session.scalars(select(Plugin.id))).all())
    assert len(commits) >= (plugins - 2) + 4 + 2 + 1 + 4


async def test_with_several_hubs_one_runs_the_pass(app: FastAPI, db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has one hub: its claims are granted without a query")
    settings = app.state.settings
    first = Retention(db, settings, HubLeases(db, settings.model_copy(update={"hub_id": "a"})))
    second = Retention(db, settings, HubLeases(db, settings.model_copy(update={"hub_id": "b"})))
    await _fill(db, utcnow() - timedelta(days=1))
    assert await first.run_once(lease_seconds=600) is not None
    assert await second.run_once(lease_seconds=600) is None
    # The holder runs the next pass too (the lease is renewed, not lost).
    assert await first.run_once(lease_seconds=600) == {}
