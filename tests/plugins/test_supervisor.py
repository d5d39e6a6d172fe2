"""Supervisors: health from every run's document, state events, and timing on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select
from tests.support import sample_plugins

from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.plugins.observe import RunObserved, StateChanged
from unity.plugins.scheduler import ManualClock
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import PluginEvent, PluginExecution
from unity_sdk import (
    HealthStatus,
    MetricField,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    PluginState,
    RunStatus,
)

# What the next collection of the "tank" plugin reads (a level in percent, or None).
LEVEL: dict[str, float | None] = {"value": 10.0}


class TankPlugin(PluginBase):
    """Reports a fill level; judges it full above 90 % and has nothing to watch without one."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="tank",
            name="Tank",
            version="1.0.0",
            category=PluginCategory.CUSTOM,
            default_interval=10,
            metrics=[MetricField(name="level", unit="%")],
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"level": LEVEL["value"]}

    def assess(self, document: dict[str, Any]) -> HealthStatus | None:
        level = document["level"]
        if level is None:
            return HealthStatus.not_applicable("no tank on this host")
        if level > 90:
            return HealthStatus.degraded(f"{level:g} % full", level=level)
        return HealthStatus.healthy(f"{level:g} % full")


async def _manager(settings: Settings, clock: ManualClock | None = None) -> PluginManager:
    db = Database(settings.effective_database_url)
    await db.upgrade()
    classes: list[Any] = [*sample_plugins.ALL, TankPlugin]
    loader = PluginLoader(classes, group="unity.plugins.none-in-tests")
    manager = PluginManager(db, settings, loader, clock=clock)
    await manager.start()
    return manager


@pytest.fixture
async def manager(settings: Settings) -> AsyncIterator[PluginManager]:
    LEVEL["value"] = 10.0
    # A clock that never moves: only the runs a test asks for happen.
    mgr = await _manager(settings.model_copy(update={"scheduler_jitter": 0.1}), ManualClock())
    yield mgr
    await mgr.stop()
    await mgr.db.dispose()


async def _events(manager: PluginManager, plugin_id: str) -> list[tuple[str, str, str]]:
    async with manager.db.session() as session:
        rows = await session.scalars(
            select(PluginEvent).where(PluginEvent.plugin_id == plugin_id).order_by(PluginEvent.id)
        )
        return [(e.previous, e.current, e.message) for e in rows]


async def test_health_follows_every_runs_document(manager: PluginManager) -> None:
    seen: list[RunObserved | StateChanged] = []

    async def observe(event: RunObserved | StateChanged) -> None:
        seen.append(event)

    manager.recorder.observers.append(observe)
    await manager.enable("tank")
    assert manager.get("tank").state is PluginState.UNKNOWN
    assert (await manager.execute("tank")).status is RunStatus.SUCCESS
    row = await manager.row("tank")
    assert (row.health_status, row.health_message) == ("healthy", "10 % full")
    LEVEL["value"] = 95.0
    await manager.execute("tank")
    row = await manager.row("tank")
    assert (row.health_status, row.health_message) == ("degraded", "95 % full")
    assert row.health_details == {"level": 95.0}
    assert manager.get("tank").state is PluginState.DEGRADED
    await manager.execute("tank")  # still degraded: no new event
    LEVEL["value"] = 20.0
    await manager.execute("tank")
    assert await _events(manager, "tank") == [
        ("disabled", "unknown", "enabled"),
        ("unknown", "healthy", "10 % full"),
        ("healthy", "degraded", "95 % full"),
        ("degraded", "healthy", "20 % full"),
    ]
    runs = [e for e in seen if isinstance(e, RunObserved)]
    assert [r.health.status.value for r in runs if r.health] == [
        "healthy",
        "degraded",
        "degraded",
        "healthy",
    ]
    assert runs[1].documents == [(manager.settings.hostname, {"level": 95.0})]
    changes = [(c.previous, c.current) for c in seen if isinstance(c, StateChanged)]
    assert changes[-2:] == [
        (PluginState.HEALTHY, PluginState.DEGRADED),
        (PluginState.DEGRADED, PluginState.HEALTHY),
    ]


async def test_nothing_to_watch_is_not_applicable_never_a_problem(manager: PluginManager) -> None:
    LEVEL["value"] = None
    await manager.enable("tank")
    await manager.execute("tank")
    state = manager.get("tank").state
    assert state is PluginState.NOT_APPLICABLE
    assert not state.problem
    assert (await manager.row("tank")).health_status == "not_applicable"


async def test_failing_runs_are_state_changes_and_disabling_is_one_too(
    manager: PluginManager,
) -> None:
    await manager.enable("failing")
    for _ in range(3):
        await manager.execute("failing")
    await manager.disable("failing")
    events = await _events(manager, "failing")
    assert [(p, c) for p, c, _ in events] == [
        ("disabled", "unknown"),
        ("unknown", "degraded"),
        ("degraded", "failing"),
        ("failing", "disabled"),
    ]
    assert "CollectionError" in events[1][2]


async def test_an_observer_that_raises_does_not_fail_the_run(manager: PluginManager) -> None:
    async def broken(event: RunObserved | StateChanged) -> None:
        raise RuntimeError("observer bug")

    manager.recorder.observers.append(broken)
    result = await manager.execute("counter")
    assert result.status is RunStatus.SUCCESS


async def _until(condition: Callable[[], Any], what: str) -> None:
    """Wait for work on the plugin's thread to finish (the clock itself never moves here)."""
    for _ in range(3000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def _count(manager: PluginManager, plugin_id: str) -> int:
    async with manager.db.session() as session:
        rows = await session.scalars(
            select(PluginExecution.status).where(PluginExecution.plugin_id == plugin_id)
        )
        return len(list(rows))


async def test_the_schedule_and_its_backoff_run_on_a_manual_clock(settings: Settings) -> None:
    clock = ManualClock()
    manager = await _manager(
        settings.model_copy(update={"scheduler_jitter": 0.0, "health_check_seconds": 0}), clock
    )
    try:
        await manager.set_config("tank", {"interval": 10})
        await manager.enable("tank")
        await manager.enable("failing")
        await _until(lambda: _has(manager, "tank", 1), "the first run")
        await _until(lambda: _has(manager, "failing", 1), "the first failure")
        await clock.advance(9.5)
        await asyncio.sleep(0.2)
        assert await _count(manager, "tank") == 1
        await clock.advance(0.5)
        await _until(lambda: _has(manager, "tank", 2), "the run due at 10 s")
        # "failing" (interval 60 s) failed once: its next run waits two intervals.
        for step in range(2, 12):
            await clock.advance(10)
            await _until(_ran(manager, "tank", step + 1), f"the run due at {step}0 s")
        assert await _count(manager, "failing") == 1
        await clock.advance(10)
        await _until(lambda: _has(manager, "failing", 2), "the run after the backoff")
        await _until(_ran(manager, "tank", 13), "the run due at 120 s")
        assert await _count(manager, "failing") == 2
    finally:
        await manager.stop()
        await manager.db.dispose()


def _ran(manager: PluginManager, plugin_id: str, count: int) -> Callable[[], Any]:
    return lambda: _has(manager, plugin_id, count)


async def _has(manager: PluginManager, plugin_id: str, count: int) -> bool:
    return await _count(manager, plugin_id) >= count


async def test_health_checks_also_run_on_their_own_schedule(settings: Settings) -> None:
    clock = ManualClock()
    manager = await _manager(
        settings.model_copy(update={"scheduler_jitter": 0.0, "health_check_seconds": 300}),
        clock,
    )
    try:
        await manager.enable("counter")
        assert (await manager.row("counter")).health_checked_at is None
        # Health is checked by the hub that holds the plugin's run lease: the first
        # run takes it (on PostgreSQL a round trip the clock does not wait for).
        await _until(lambda: _has(manager, "counter", 1), "the first run")
        assert manager.leases.holds("counter")
        await clock.advance(300)

        async def checked() -> bool:
            return (await manager.row("counter")).health_checked_at is not None

        await _until(checked, "the scheduled health check")
        assert (await manager.row("counter")).health_status == "healthy"
    finally:
        await manager.stop()
        await manager.db.dispose()
