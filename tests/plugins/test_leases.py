"""Leases and hub sync: two plugin managers in one process on one PostgreSQL database.

Each manager has its own engine, hub id and manual clock, as two `unity serve`
processes would. Scheduled runs are claimed through the database, so each
happens on one of them; a hub that stops renewing loses its plugins to the
other; enable, disable and config changes made through one reach the other.
On SQLite the claim costs nothing: no statement at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import event, select
from tests.support import sample_plugins

from unity.plugins.leases import LEASE_SLACK_SECONDS, Leases
from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.plugins.scheduler import ManualClock
from unity.retention import Retention
from unity.settings import Settings
from unity.storage import leases as lease_store
from unity.storage.db import Database
from unity.storage.leases import RETENTION_LEASE, HubLeases
from unity.storage.models import PluginExecution

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
INTERVAL = 1.0


async def _manager(settings: Settings, hub: str, clock: ManualClock) -> PluginManager:
    hub_settings = settings.model_copy(
        update={"hub_id": hub, "scheduler_jitter": 0.0, "health_check_seconds": 0}
    )
    db = Database(settings.effective_database_url)
    await db.upgrade()
    classes: list[Any] = list(sample_plugins.ALL)
    loader = PluginLoader(classes, group="unity.plugins.none-in-tests")
    manager = PluginManager(db, hub_settings, loader, clock=clock)
    await manager.start()
    return manager


class Hubs:
    """Two managers on one database, each with the clock its timers read."""

    def __init__(self, a: PluginManager, b: PluginManager, clocks: list[ManualClock]) -> None:
        self.a, self.b, self.clocks = a, b, clocks

    async def advance(self, seconds: float) -> None:
        """Both hubs' timers fire together, as on a shared grid: the race is real."""
        await asyncio.gather(*(clock.advance(seconds) for clock in self.clocks))

    async def runs(self) -> dict[str, int]:
        """Scheduled runs of "counter", by the hub that made them (its instance's count)."""
        return {
            "a": self.a.get("counter").instance.runs,  # type: ignore[attr-defined]
            "b": self.b.get("counter").instance.runs,  # type: ignore[attr-defined]
        }


@pytest.fixture
async def hubs(settings: Settings) -> AsyncIterator[Hubs]:
    clocks = [ManualClock(), ManualClock()]
    a = await _manager(settings, "hub-a", clocks[0])
    b = await _manager(settings, "hub-b", clocks[1])
    yield Hubs(a, b, clocks)
    for manager in (a, b):
        await manager.stop()
        await manager.db.dispose()


async def _until(condition: Callable[[], Any], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _executions(manager: PluginManager) -> int:
    async with manager.db.session() as session:
        rows = await session.scalars(
            select(PluginExecution.id).where(PluginExecution.plugin_id == "counter")
        )
        return len(list(rows))


async def _holders(manager: PluginManager) -> dict[str, str]:
    async with manager.db.session() as session:
        return await lease_store.holders(session)


async def _enable_on_both(hubs: Hubs) -> None:
    await hubs.a.set_config("counter", {"interval": INTERVAL})
    await hubs.a.enable("counter")
    # The first run is due at once (no jitter): hub A claims it.
    await _until(lambda: _has_executions(hubs.a, 1), "the first run")
    assert await hubs.b.sync.sync() == ["counter"]
    assert "counter" in hubs.b.scheduler
    assert hubs.b.get("counter").interval == INTERVAL


async def _has_executions(manager: PluginManager, count: int) -> bool:
    return await _executions(manager) >= count


@POSTGRES_ONLY
async def test_each_scheduled_run_happens_on_one_hub(hubs: Hubs) -> None:
    await _enable_on_both(hubs)
    # B's timer fired at once too, when sync scheduled it: A held the lease.
    await asyncio.sleep(0.2)
    assert await hubs.runs() == {"a": 1, "b": 0}
    for slot in range(2, 8):
        await hubs.advance(INTERVAL)
        await _until(lambda s=slot: _has_executions(hubs.a, s), f"run {slot}")  # type: ignore[misc]
    await asyncio.sleep(0.2)
    assert await _executions(hubs.a) == 7
    assert await hubs.runs() == {"a": 7, "b": 0}
    assert await _holders(hubs.a) == {"plugin:counter": "hub-a"}
    # Manual runs are not claimed: they run on the hub asked.
    await hubs.b.execute("counter")
    assert await hubs.runs() == {"a": 7, "b": 1}


@POSTGRES_ONLY
async def test_a_hub_that_stops_renewing_loses_its_plugins(hubs: Hubs) -> None:
    await _enable_on_both(hubs)
    # Hub A freezes (its timers stop; it releases nothing, as when killed).
    hubs.clocks.remove(hubs.clocks[0])
    await hubs.advance(INTERVAL)
    await asyncio.sleep(0.2)
    assert await hubs.runs() == {"a": 1, "b": 0}, "B ran while A's lease was valid"
    # The lease covers A's next run plus the slack; after that, B's next timer takes over.
    await asyncio.sleep(INTERVAL + LEASE_SLACK_SECONDS)
    await hubs.advance(INTERVAL)
    await _until(lambda: _has_executions(hubs.a, 2), "the run taken over by B")
    assert await hubs.runs() == {"a": 1, "b": 1}
    assert await _holders(hubs.a) == {"plugin:counter": "hub-b"}
    assert hubs.b.leases.holds("counter")


@POSTGRES_ONLY
async def test_a_hub_taking_a_plugin_over_goes_on_from_its_stored_state(hubs: Hubs) -> None:
    await hubs.a.set_config("failing", {"interval": INTERVAL})
    await hubs.a.enable("failing")

    async def failed(times: int) -> bool:
        return (await hubs.a.row("failing")).consecutive_failures >= times

    await _until(lambda: failed(1), "the first failure")
    await hubs.b.sync.sync()
    hubs.clocks.remove(hubs.clocks[0])  # A freezes
    # A's lease covers its backoff (two intervals) plus the slack.
    await asyncio.sleep(2 * INTERVAL + LEASE_SLACK_SECONDS)
    await hubs.advance(2 * INTERVAL)
    await _until(lambda: failed(2), "B's run")
    assert hubs.b.leases.holds("failing")
    # B counted on from A's failures, not from zero.
    assert (await hubs.b.row("failing")).consecutive_failures == 2
    assert hubs.b.get("failing").consecutive_failures == 2


@POSTGRES_ONLY
async def test_disable_and_config_made_through_one_hub_reach_the_other(hubs: Hubs) -> None:
    await _enable_on_both(hubs)
    counter_b = hubs.b.get("counter").instance
    await hubs.a.set_config("counter", {"interval": 30})
    assert await hubs.a.sync.sync() == [], "a hub's own change is no change to apply"
    assert await hubs.b.sync.sync() == ["counter"]
    assert hubs.b.get("counter").interval == 30
    assert counter_b.events[-1] == "config"  # type: ignore[attr-defined]
    assert await hubs.b.sync.sync() == []
    # Both rescheduled timers fired at once (no jitter); A kept the plugin.
    await asyncio.sleep(0.3)
    assert await hubs.runs() == {"a": 2, "b": 0}

    await hubs.a.disable("counter")
    assert await _holders(hubs.a) == {}, "disabling released the lease"
    assert await hubs.b.sync.sync() == ["counter"]
    assert "counter" not in hubs.b.scheduler
    assert not hubs.b.get("counter").enabled
    before = await _executions(hubs.a)
    await hubs.advance(60)
    await asyncio.sleep(0.2)
    assert await _executions(hubs.a) == before

    # Enabled through B: A follows, and the runs go on on one of them.
    await hubs.b.enable("counter")
    assert await hubs.a.sync.sync() == ["counter"]
    assert "counter" in hubs.a.scheduler
    await _until(lambda: _has_executions(hubs.a, before + 1), "the run after enabling")
    await asyncio.sleep(0.2)
    assert await _executions(hubs.a) == before + 1


@POSTGRES_ONLY
async def test_concurrent_claims_have_one_winner(settings: Settings) -> None:
    databases = [Database(settings.effective_database_url) for _ in range(8)]
    await databases[0].upgrade()
    leases = [
        Leases(db, settings.model_copy(update={"hub_id": f"hub-{n}"}))
        for n, db in enumerate(databases)
    ]
    try:
        for _ in range(5):
            won = await asyncio.gather(*(lease.claim_run("counter", 60) for lease in leases))
            assert sum(won) == 1
        holders = [lease for lease in leases if lease.holds("counter")]
        assert len(holders) == 1
        # The holder releases on a clean stop: the next claim goes to anyone at once.
        await holders[0].release_all()
        others = [lease for lease in leases if lease is not holders[0]]
        assert await others[0].claim_run("counter", 60)
    finally:
        for db in databases:
            await db.dispose()


@POSTGRES_ONLY
async def test_retention_runs_on_one_hub_per_pass(settings: Settings) -> None:
    databases = [Database(settings.effective_database_url) for _ in range(3)]
    await databases[0].upgrade()
    passes: list[str] = []

    class Counted(Retention):
        async def purge(self, now: Any = None) -> dict[str, tuple[int, int]]:
            passes.append(self.leases.hub_id)
            return {}

    hub_settings = settings.model_copy(update={"retention_check_seconds": 0.2})
    retentions = [
        Counted(
            db, hub_settings, HubLeases(db, hub_settings.model_copy(update={"hub_id": f"h{n}"}))
        )
        for n, db in enumerate(databases)
    ]
    tasks = [asyncio.create_task(r.run()) for r in retentions]
    try:
        await asyncio.sleep(2.1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for db in databases:
            await db.dispose()
    # Every hub tried about ten passes; one of them did each.
    assert 6 <= len(passes) <= 11, passes
    assert len(set(passes)) == 1, passes


async def test_on_sqlite_a_claim_costs_no_statement(settings: Settings) -> None:
    db = Database(settings.effective_database_url)
    if not db.is_sqlite:
        await db.dispose()
        pytest.skip("the SQLite case")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    leases = Leases(db, settings)
    try:
        assert not leases.shared
        assert await leases.claim_run("counter", 60)
        assert await leases.claim(RETENTION_LEASE, 60)
        await leases.renew_run("counter", 60)
        assert leases.holds("counter")
        await leases.release_all()
        assert statements == []
    finally:
        await db.dispose()
