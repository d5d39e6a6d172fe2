"""The scheduler keeps every plugin on time whatever the others do."""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import psutil
import pytest
from sqlalchemy import select
from tests.support import sample_plugins

from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import PluginExecution


@pytest.fixture
async def manager(settings: Settings) -> Any:
    classes = [
        *sample_plugins.ALL,
        sample_plugins.IsolatedHangingPlugin,
        sample_plugins.IsolatedOkPlugin,
    ]
    db = Database(settings.effective_database_url)
    await db.upgrade()
    mgr = PluginManager(db, settings, PluginLoader(classes, group="unity.plugins.none-in-tests"))
    await mgr.start()
    yield mgr
    await mgr.stop()
    await db.dispose()


async def _executions(mgr: PluginManager, plugin_id: str) -> list[PluginExecution]:
    async with mgr.db.session() as session:
        rows = await session.scalars(
            select(PluginExecution)
            .where(PluginExecution.plugin_id == plugin_id)
            .order_by(PluginExecution.started_at)
        )
        return list(rows)


async def test_misbehaving_plugins_do_not_delay_the_others(manager: PluginManager) -> None:
    for plugin_id in ("counter", "hanging", "failing", "blocking"):
        await manager.set_config(plugin_id, {"interval": 1})
    await manager.set_config("blocking", {"interval": 1, "seconds": 4.0})
    for plugin_id in ("counter", "hanging", "failing", "blocking"):
        await manager.enable(plugin_id)
    await asyncio.sleep(4.6)

    counter = await _executions(manager, "counter")
    assert [e.status for e in counter].count("success") >= 4
    starts = [e.started_at for e in counter if e.status == "success"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(0.7 < gap < 1.3 for gap in gaps), gaps

    hanging = await _executions(manager, "hanging")
    assert hanging
    assert {e.status for e in hanging} == {"timed_out"}
    assert all(e.duration_ms is not None and e.duration_ms < 1000 for e in hanging)
    # The timed-out coroutine was really cancelled inside the plugin.
    assert sample_plugins.HangingPlugin.cancelled >= 1

    blocking = [e.status for e in await _executions(manager, "blocking")]
    assert blocking[0] == "timed_out"
    # While its thread is still stuck, later ticks are skipped, not piled up.
    assert "skipped" in blocking

    failing = await _executions(manager, "failing")
    # Backoff: after failures the delay doubles (2 s, then 4 s), so only two runs fit.
    assert [e.status for e in failing] == ["failed", "failed"]
    row = await manager.row("failing")
    assert row.state == "degraded"
    assert row.consecutive_failures == 2


async def test_failures_degrade_then_fail_and_one_success_recovers(
    manager: PluginManager,
) -> None:
    # Without its required url the collection raises a validation error every time.
    states = []
    for _ in range(3):
        result = await manager.execute("configured")
        assert result.status == "failed"
        states.append((await manager.row("configured")).state)
    assert states == ["degraded", "degraded", "failing"]
    assert manager.supervisor("configured").next_delay() == 60 * 2**3
    await manager.set_config("configured", {"url": "http://127.0.0.1:1"})
    result = await manager.execute("configured")
    assert result.status == "success"
    row = await manager.row("configured")
    assert (row.state, row.consecutive_failures, row.last_error) == ("healthy", 0, None)
    assert manager.supervisor("configured").next_delay() == 60


async def test_unrecoverable_error_fails_at_once(manager: PluginManager) -> None:
    result = await manager.execute("auth-failing")
    assert result.error == "PluginAuthError: password rejected"
    assert (await manager.row("auth-failing")).state == "failing"


async def test_backoff_is_capped(manager: PluginManager) -> None:
    managed = manager.get("failing")
    managed.consecutive_failures = 30
    assert manager.supervisor("failing").next_delay() == manager.settings.max_backoff_seconds


async def test_process_isolation_kills_a_hung_plugin(manager: PluginManager) -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    result = await manager.execute("isolated-hanging")
    assert result.status == "timed_out"
    assert 1400 < result.duration_ms < 5000
    leftovers = [
        p
        for p in me.children(recursive=True)
        if p.pid not in before and "unity.plugins._child" in " ".join(p.cmdline())
    ]
    assert leftovers == []


async def test_process_isolation_runs_in_another_process(manager: PluginManager) -> None:
    result = await manager.execute("isolated-ok")
    assert result.status == "success"
    assert result.data is not None
    assert result.data["pid"] != os.getpid()


async def test_disable_stops_scheduling(manager: PluginManager) -> None:
    await manager.set_config("counter", {"interval": 1})
    await manager.enable("counter")
    assert "counter" in manager.scheduler.scheduled
    await asyncio.sleep(1.5)
    await manager.disable("counter")
    assert "counter" not in manager.scheduler.scheduled
    count = len(await _executions(manager, "counter"))
    await asyncio.sleep(1.5)
    assert len(await _executions(manager, "counter")) == count
    instance = manager.get("counter").instance
    assert isinstance(instance, sample_plugins.CounterPlugin)
    assert instance.events == ["config", "enable", "disable"]
