"""The overview view: state counts and host cards, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.support.sample_plugins import CounterPlugin, FailingPlugin
from unity.plugins.manager import PluginManager
from unity.storage import registry
from unity.storage.models import LatestMetric, Plugin
from unity.views import build_overview, count_states
from unity_sdk import PluginMetadata, PluginState


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [CounterPlugin, FailingPlugin]


async def _uninstalled(app: FastAPI, plugin_id: str) -> None:
    """The row a plugin leaves when its package is removed: enabled, last seen healthy."""
    metadata = PluginMetadata(id=plugin_id, name="Gone", version="1.0.0")
    async with app.state.db.session() as session:
        row, _ = await registry.sync_plugin(session, metadata=metadata)
        row.enabled = True
        row.state = "healthy"
        row.health_status = "healthy"


async def test_every_state_is_counted_and_uninstalled_code_is_not_loaded(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    await manager.enable("counter")
    await manager.execute("counter")
    await _uninstalled(app, "gone")
    async with app.state.db.session() as session:
        overview = await build_overview(session, manager)
    assert list(overview.counts) == list(PluginState)
    assert overview.counts[PluginState.NOT_LOADED] == 1
    assert overview.counts[PluginState.HEALTHY] == 1, "counter only"
    assert overview.counts[PluginState.DISABLED] == 1, "failing"
    assert sum(overview.counts.values()) == 3
    assert [p.id for p in overview.plugins] == ["counter", "gone"]
    assert overview.disabled == 1
    assert [h.name for h in overview.hosts] == ["test-host"]
    hub = overview.hosts[0]
    assert hub.kind == "hub"
    assert [p.id for p in hub.plugins] == ["counter"], "the row left behind is not the hub's"


async def test_a_host_goes_stale_after_the_missed_intervals(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    await manager.enable("counter")
    await manager.execute("counter")
    async with app.state.db.session() as session:
        fresh = await build_overview(session, manager)
    # Ten minutes pass and the plugin does not run (the hub was stopped, say).
    missed = manager.settings.stale_after_missed
    timeout = manager.plugins["counter"].metadata.timeout
    interval = manager.plugins["counter"].interval
    then = fresh.hosts[0].updated_at - timedelta(seconds=interval * missed + timeout + 5)
    async with app.state.db.writer() as session:
        await session.execute(update(Plugin).values(last_run_at=then))
        await session.execute(update(LatestMetric).values(timestamp=then))
    async with app.state.db.session() as session:
        later = await build_overview(session, manager)
    assert not fresh.hosts[0].stale
    assert later.hosts[0].stale
    assert later.counts[PluginState.STALE] == 1


def test_counts_start_at_zero_for_every_state() -> None:
    assert count_states([]) == dict.fromkeys(PluginState, 0)
