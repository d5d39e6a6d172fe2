"""The alert lifecycle on the real app's database, with a clock the test moves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from tests.alerts.support import Clock, ProbePlugin, Recorder, enable, engine_for, run
from unity.alerts import AlertEngine
from unity.plugins.observe import StateChanged
from unity.storage.models import (
    AlertInstance,
    AlertSilence,
    AlertTransition,
    MaintenanceWindow,
    Plugin,
)
from unity_sdk import HealthStatus, PluginMetadata, PluginState


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def engine(app: FastAPI, clock: Clock, recorder: Recorder) -> AlertEngine:
    await enable(app)
    return await engine_for(app, clock, recorder)


async def transitions(app: FastAPI, rule_id: str) -> list[tuple[str, str, float | None]]:
    async with app.state.db.session() as session:
        rows = await session.scalars(
            select(AlertTransition)
            .where(AlertTransition.rule_id == rule_id)
            .order_by(AlertTransition.id)
        )
        return [(r.from_state, r.to_state, r.value) for r in rows]


async def test_threshold_fires_at_once_and_resolves_past_the_clear_mark(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    await engine.observe(run(clock, {"load": 50.0}))
    assert recorder.notices == []
    await engine.observe(run(clock, {"load": 95.0}))
    assert recorder.of("load-high") == [("firing", "")]
    notice = recorder.notices[0]
    assert notice.severity == "critical"
    assert notice.summary == "load on web1 is 95% (limit 90%)"
    assert notice.value == 95.0
    assert notice.threshold == 90.0
    assert notice.unit == "%"
    assert notice.labels["host"] == "web1"
    assert notice.labels["plugin"] == "probe"
    assert notice.link.startswith("/plugins/probe?at=")
    # Hovering between clear (80) and threshold (90): stays firing, no flapping.
    for value in (89.0, 91.0, 85.0, 90.5, 81.0):
        clock.advance(60)
        await engine.observe(run(clock, {"load": value}))
    assert recorder.of("load-high") == [("firing", "")]
    clock.advance(60)
    await engine.observe(run(clock, {"load": 79.0}))
    assert recorder.of("load-high") == [("firing", ""), ("resolved", "")]
    assert recorder.notices[-1].ended_at == clock.now
    assert await transitions(app, "load-high") == [
        ("inactive", "firing", 95.0),
        ("firing", "resolved", 79.0),
    ]


async def test_per_item_instances_wait_for_their_for_duration(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    disks = {"sda": {"percent": 95.0}, "sdb": {"percent": 40.0}}
    await engine.observe(run(clock, {"disks": disks}))
    assert recorder.of("disk-full") == []
    assert await transitions(app, "disk-full") == [("inactive", "pending", 95.0)]
    clock.advance(30)
    await engine.tick()
    assert recorder.of("disk-full") == []
    clock.advance(30)
    await engine.tick()  # `for` (60 s) has passed without a new run
    assert recorder.of("disk-full") == [("firing", "sda")]
    disks["sdb"]["percent"] = 97.0
    clock.advance(60)
    await engine.observe(run(clock, {"disks": disks}))
    clock.advance(60)
    await engine.observe(run(clock, {"disks": disks}))
    assert recorder.of("disk-full") == [("firing", "sda"), ("firing", "sdb")]
    # A pending alert whose condition ends goes back to inactive, untold.
    del disks["sda"]  # unmounted: its alert resolves
    disks["sdb"]["percent"] = 50.0
    clock.advance(60)
    await engine.observe(run(clock, {"disks": disks}))
    assert sorted(recorder.of("disk-full")[2:]) == [("resolved", "sda"), ("resolved", "sdb")]
    async with app.state.db.session() as session:
        items = {r.item: r.state for r in await session.scalars(select(AlertInstance))}
    assert items == {"sda": "resolved", "sdb": "resolved"}


async def test_pending_that_clears_before_for_is_never_told(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    await engine.observe(run(clock, {"disks": {"sda": {"percent": 95.0}}}))
    clock.advance(30)
    await engine.observe(run(clock, {"disks": {"sda": {"percent": 50.0}}}))
    clock.advance(120)
    await engine.tick()
    assert recorder.notices == []
    assert await transitions(app, "disk-full") == [
        ("inactive", "pending", 95.0),
        ("pending", "inactive", 50.0),
    ]


async def test_threshold_from_the_items_own_high_mark(
    engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    disks = {"sda": {"celsius": 50.0, "high": 60.0}, "nvme0": {"celsius": 71.0, "high": 70.0}}
    await engine.observe(run(clock, {"disks": disks}))
    assert recorder.of("disk-hot") == [("firing", "nvme0")]
    assert recorder.notices[0].threshold == 70.0


async def test_rate_of_a_counter(engine: AlertEngine, clock: Clock, recorder: Recorder) -> None:
    await engine.observe(run(clock, {"errors": 10}))
    clock.advance(60)
    await engine.observe(run(clock, {"errors": 10}))
    assert recorder.of("errors-growing") == []
    clock.advance(60)
    await engine.observe(run(clock, {"errors": 13}))
    assert recorder.of("errors-growing") == [("firing", "")]
    assert recorder.notices[-1].value == pytest.approx(3.0)
    assert recorder.notices[-1].unit == "count/min"
    clock.advance(60)
    await engine.observe(run(clock, {"errors": 0}))  # a reset: no rate, no change
    clock.advance(60)
    await engine.observe(run(clock, {"errors": 0}))
    assert recorder.of("errors-growing") == [("firing", ""), ("resolved", "")]


async def test_no_data_after_missed_intervals_then_back(
    engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    await engine.observe(run(clock, {"load": 1.0}, host="agent7"))
    clock.advance(100)
    await engine.tick()
    assert recorder.of("silent") == []
    clock.advance(30)  # 130 s > 2 intervals of 60 s
    await engine.tick()
    assert recorder.of("silent") == [("firing", "")]
    assert recorder.notices[-1].labels["host"] == "agent7"
    clock.advance(10)
    await engine.observe(run(clock, {"load": 1.0}, host="agent7"))
    assert recorder.of("silent") == [("firing", ""), ("resolved", "")]


async def test_state_and_health_rules(
    engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    await engine.observe(
        StateChanged("probe", clock.now, PluginState.DEGRADED, PluginState.FAILING, "boom")
    )
    assert recorder.of("failing") == [("firing", "")]
    assert recorder.notices[-1].summary == "probe is failing"
    await engine.observe(run(clock, {"load": 1.0}, health=HealthStatus.unhealthy("UPS on battery")))
    assert recorder.of("unwell") == [("firing", "")]
    assert recorder.of("failing") == [("firing", ""), ("resolved", "")]
    await engine.observe(run(clock, {"load": 1.0}, health=HealthStatus.healthy()))
    assert recorder.of("unwell") == [("firing", ""), ("resolved", "")]


async def test_repeat_interval_and_acknowledgement(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    await engine.observe(run(clock, {"load": 99.0}))
    repeat = app.state.settings.alert_repeat_seconds
    clock.advance(repeat - 1)
    await engine.tick()
    assert len(recorder.of("load-high")) == 1
    clock.advance(1)
    await engine.tick()
    assert recorder.of("load-high") == [("firing", ""), ("firing", "")]
    fp = recorder.notices[0].fingerprint
    async with app.state.db.session() as session:
        row = await session.get(AlertInstance, fp)
        assert row is not None
        row.ack_by, row.ack_note, row.ack_at, row.version = (
            "token:x",
            "on it",
            clock.now,
            row.version + 1,
        )
    await engine.reload(fp)
    clock.advance(repeat * 2)
    await engine.tick()
    assert len(recorder.of("load-high")) == 2


async def test_silences_and_maintenance_suppress_notices_not_state(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    start, end = clock.now, clock.now + timedelta(minutes=20)
    async with app.state.db.session() as session:
        matchers = {"rule_id": "load-high", "host": "web1"}
        session.add(AlertSilence(matchers=matchers, starts_at=start, ends_at=end))
        session.add(MaintenanceWindow(host="db9", starts_at=start, ends_at=end))
    await engine.refresh()
    await engine.observe(run(clock, {"load": 99.0}))
    await engine.observe(run(clock, {"load": 99.0}, host="db9"))
    await engine.observe(run(clock, {"load": 99.0}, host="web2"))
    assert [n.labels["host"] for n in recorder.notices] == ["web2"]
    assert {n.rule_id for n in recorder.notices} == {"load-high"}
    async with app.state.db.session() as session:
        firing = {r.host for r in await session.scalars(select(AlertInstance))}
    assert firing == {"web1", "db9", "web2"}
    assert engine.lifecycle.notices_suppressed == 2
    clock.advance(1300)  # both over: what they held back is told now, once
    await engine.tick()
    await engine.tick()
    told = sorted(n.labels["host"] for n in recorder.notices if n.rule_id == "load-high")
    assert told == ["db9", "web1", "web2"]


async def test_a_switched_off_rule_resolves_its_alerts(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    from unity.storage.models import AlertRuleOverride

    await engine.observe(run(clock, {"load": 99.0}))
    async with app.state.db.session() as session:
        session.add(AlertRuleOverride(plugin_id="probe", rule_id="load-high", enabled=False))
    clock.advance(15)
    await engine.tick()
    assert recorder.of("load-high") == [("firing", ""), ("resolved", "")]
    await engine.observe(run(clock, {"load": 99.0}))
    assert len(recorder.of("load-high")) == 2


async def test_an_external_agent_that_stops_reporting_goes_stale(
    app: FastAPI, engine: AlertEngine, clock: Clock, recorder: Recorder
) -> None:
    async with app.state.db.session() as session:
        await session.execute(update(Plugin).where(Plugin.id == "probe").values(external=True))
    await engine.refresh()
    assert "agent-stale" in [r.id for r in await engine.rules("probe")]
    await engine.observe(run(clock, {"load": 1.0}, host="pi4"))
    clock.advance(181)  # 3 intervals of 60 s
    await engine.tick()
    stale = [n for n in recorder.notices if n.rule_id == "agent-stale"]
    assert [(n.status, n.labels["host"]) for n in stale] == [("firing", "pi4")]
    assert stale[0].summary == "probe on pi4 stopped reporting: no data for 181 s"


async def test_history_older_than_its_retention_is_deleted(
    app: FastAPI, engine: AlertEngine, clock: Clock
) -> None:
    await engine.observe(run(clock, {"load": 99.0}))
    clock.advance(60)
    await engine.observe(run(clock, {"load": 10.0}))
    days = app.state.settings.alert_history_days
    clock.advance(days * 86400 - 120)
    await engine.tick()
    assert len(await transitions(app, "load-high")) == 2
    clock.advance(3600)  # the next purge, an hour on: both transitions are past retention
    await engine.tick()
    assert await transitions(app, "load-high") == []


async def test_rules_compiled_across_an_invalidation_are_used_not_kept(
    app: FastAPI, clock: Clock, recorder: Recorder
) -> None:
    # A tick invalidates the rule config (an agent's host joined) while a batch's
    # rules are being compiled: that batch still gets its rules, and the next one
    # compiles them again from the new config.
    await enable(app)
    engine = await engine_for(app, clock, recorder)
    asked, gate = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    real = app.state.manager.metadata_for

    async def slow(plugin_id: str) -> PluginMetadata:
        calls.append(plugin_id)
        asked.set()
        await gate.wait()
        metadata: PluginMetadata = await real(plugin_id)
        return metadata

    engine.metadata = slow
    compiling = asyncio.create_task(engine.rules("probe"))
    await asked.wait()
    engine.invalidate()
    gate.set()
    assert "load-high" in [r.id for r in await compiling]
    assert "load-high" in [r.id for r in await engine.rules("probe")]
    assert calls == ["probe", "probe"]
    await engine.rules("probe")
    assert calls == ["probe", "probe"]  # kept this time
