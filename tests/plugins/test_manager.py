"""The manager: registry sync across restarts, config, health, retention, shutdown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import sample_plugins

from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.retention import Retention
from unity.settings import Settings
from unity.storage import metrics as metric_store
from unity.storage.db import Database
from unity.storage.models import Plugin, PluginExecution, PluginMetric
from unity.storage.types import utcnow
from unity_sdk import ConfigError, MetricField, PluginBase, PluginMetadata


def _versioned(version: str, metrics: list[str]) -> type[PluginBase]:
    class Versioned(PluginBase):
        def get_metadata(self) -> PluginMetadata:
            return PluginMetadata(
                id="versioned",
                name=f"Versioned {version}",
                version=version,
                metrics=[MetricField(name=m) for m in metrics],
            )

        async def collect_data(self) -> dict[str, Any]:
            return dict.fromkeys(metrics, 1)

    return Versioned


async def _start(settings: Settings, classes: list[type[Any]]) -> PluginManager:
    db = Database(settings.effective_database_url)
    await db.upgrade()
    manager = PluginManager(db, settings, PluginLoader(classes, group="none"))
    await manager.start()
    return manager


async def _close(manager: PluginManager) -> None:
    await manager.stop()
    await manager.db.dispose()


async def test_registry_sync_is_idempotent_and_updates_metadata(settings: Settings) -> None:
    first = await _start(settings, [_versioned("1.0.0", ["a"]), *sample_plugins.ALL])
    await first.enable("counter")
    await first.set_config("counter", {"interval": 42})
    await _close(first)

    second = await _start(settings, [_versioned("1.1.0", ["a", "b"]), *sample_plugins.ALL])
    try:
        async with second.db.session() as session:
            count = await session.scalar(select(func.count()).select_from(Plugin))
            row = await session.get(Plugin, "versioned")
        assert count == len(sample_plugins.ALL) + 1
        assert row is not None
        assert row.version == "1.1.0"
        assert row.name == "Versioned 1.1.0"
        assert [m["name"] for m in row.plugin_metadata["metrics"]] == ["a", "b"]
        counter = await second.row("counter")
        assert counter.enabled
        assert counter.config == {"interval": 42}
        assert second.get("counter").interval == 42
        assert "counter" in second.scheduler.scheduled
    finally:
        await _close(second)


async def test_autoenable_only_on_an_empty_registry(settings: Settings) -> None:
    settings = settings.model_copy(update={"autoenable": ["counter"]})
    manager = await _start(settings, sample_plugins.ALL)
    assert (await manager.row("counter")).enabled
    await manager.disable("counter")
    await _close(manager)
    manager = await _start(settings, sample_plugins.ALL)
    try:
        assert not (await manager.row("counter")).enabled
    finally:
        await _close(manager)


async def test_invalid_config_changes_nothing(settings: Settings) -> None:
    manager = await _start(settings, sample_plugins.ALL)
    try:
        await manager.set_config("configured", {"url": "http://a", "port": 1})
        with pytest.raises(ConfigError) as caught:
            await manager.set_config(
                "configured", {"url": 5, "port": 70000, "extra": 1, "interval": 0}
            )
        locs = sorted(tuple(e["loc"]) for e in caught.value.errors)
        assert locs == [("extra",), ("interval",), ("port",), ("url",)]
        assert (await manager.row("configured")).config == {"url": "http://a", "port": 1}
        assert manager.get("configured").instance.config.port == 1
    finally:
        await _close(manager)


async def test_a_typed_plugin_gets_its_validated_model(settings: Settings) -> None:
    """``PluginBase[ServerConfig]``: the hub hands over the model instance, defaults
    filled in, to the live instance and to ``on_config_change``; the plugin never
    validates it again."""
    manager = await _start(settings, sample_plugins.ALL)
    try:
        await manager.set_config("configured", {"url": "http://a", "interval": 30})
        plugin = manager.get("configured").instance
        assert isinstance(plugin, sample_plugins.ConfiguredPlugin)
        assert isinstance(plugin.config, sample_plugins.ServerConfig)
        assert plugin.config == sample_plugins.ServerConfig(url="http://a")
        assert plugin.changes == [plugin.config]
        result = await manager.execute("configured")
        assert result.data == {"url": "http://a", "port": 8080}
        assert (await manager.row("configured")).config == {"url": "http://a", "interval": 30}
    finally:
        await _close(manager)


async def test_enable_requires_a_valid_config(settings: Settings) -> None:
    manager = await _start(settings, sample_plugins.ALL)
    try:
        with pytest.raises(ConfigError):
            await manager.enable("configured")
        assert not (await manager.row("configured")).enabled
        assert "configured" not in manager.scheduler.scheduled
    finally:
        await _close(manager)


async def test_health_is_checked_and_persisted(settings: Settings) -> None:
    manager = await _start(settings, sample_plugins.ALL)
    try:
        await manager.set_config("configured", {"url": "http://a", "mode": "slow"})
        status = await manager.check_health("configured")
        assert status.status.value == "degraded"
        row = await manager.row("configured")
        assert (row.health_status, row.health_message) == ("degraded", "running in slow mode")
        assert row.health_checked_at is not None
    finally:
        await _close(manager)


async def test_run_records_execution_metrics_and_latest(settings: Settings) -> None:
    manager = await _start(settings, sample_plugins.ALL)
    try:
        first = await manager.execute("counter")
        second = await manager.execute("counter")
        assert (first.status, second.status) == ("success", "success")
        async with manager.db.session() as session:
            rows, _ = await metric_store.query_metrics(session, plugin_id="counter")
            latest = await metric_store.latest_documents(session, plugin_ids=["counter"])
            executions, _ = await metric_store.list_executions(session, plugin_id="counter")
        assert [r.data["runs"] for r in rows] == [2, 1]
        assert {r.host for r in rows} == {"test-host"}
        assert [(x.host, x.data["runs"]) for x in latest] == [("test-host", 2)]
        assert [e.trigger for e in executions] == ["manual", "manual"]
        assert all(e.metrics_count == 1 and e.duration_ms is not None for e in executions)
        assert (await manager.row("counter")).run_count == 2
    finally:
        await _close(manager)


async def test_retention_deletes_only_old_rows(settings: Settings) -> None:
    manager = await _start(settings, sample_plugins.ALL)
    try:
        await manager.set_config("failing", {"retention_days": 2})
        now = utcnow()
        samples = [
            metric_store.MetricSample(plugin, "h", now - timedelta(days=age), {"v": age})
            for plugin in ("counter", "failing")
            for age in (0, 3, 40)
        ]
        async with manager.db.session() as session:
            await metric_store.insert_samples(session, samples)
            for age in (0, 3, 40):
                await metric_store.record_execution(
                    session,
                    plugin_id="counter",
                    started_at=now - timedelta(days=age),
                    completed_at=now,
                    status="success",
                    duration_ms=1.0,
                )
        removed = await Retention(manager.db, manager.settings).purge(now)
        assert removed == {"counter": (1, 1), "failing": (2, 0)}
        async with manager.db.session() as session:
            left = await session.execute(select(PluginMetric.plugin_id, PluginMetric.data))
            ages = sorted((p, d["v"]) for p, d in left.all())
            executions = await session.scalar(select(func.count()).select_from(PluginExecution))
        assert ages == [("counter", 0), ("counter", 3), ("failing", 0)]
        assert executions == 2
    finally:
        await _close(manager)


async def test_stop_calls_on_disable(settings: Settings) -> None:
    manager = await _start(settings, sample_plugins.ALL)
    await manager.enable("counter")
    instance = manager.get("counter").instance
    await _close(manager)
    assert isinstance(instance, sample_plugins.CounterPlugin)
    assert instance.events == ["enable", "disable"]
