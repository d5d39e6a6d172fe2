"""The alerts read model: the periods an alert fired, the threshold lines a chart
draws, and the rules in force, on the real app's database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.alerts.support import Clock, ProbePlugin, Recorder, enable, engine_for, run
from unity.alerts import AlertEngine
from unity.views.alerts import (
    RuleInForce,
    alert_periods,
    firing_by_severity,
    rules_in_force,
    threshold_lines,
)
from unity_sdk import AlertRule, MetricField, MetricKind


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(app: FastAPI, clock: Clock) -> AlertEngine:
    await enable(app)
    return await engine_for(app, clock, Recorder())


async def _fire_twice(engine: AlertEngine, clock: Clock) -> dict[str, Any]:
    """load-high fires at 12:00, resolves at 12:10, fires again at 12:20 and stays."""
    marks = {"first": clock.now}
    await engine.observe(run(clock, {"load": 99.0}))
    clock.advance(600)
    marks["resolved"] = clock.now
    await engine.observe(run(clock, {"load": 50.0}))
    clock.advance(600)
    marks["again"] = clock.now
    await engine.observe(run(clock, {"load": 97.0}))
    clock.advance(600)
    return marks


async def test_periods_follow_the_transitions_and_are_clipped_to_the_range(
    app: FastAPI, engine: AlertEngine, clock: Clock
) -> None:
    marks = await _fire_twice(engine, clock)
    async with app.state.db.session() as session:
        whole = await alert_periods(
            session,
            plugin_id="probe",
            start=marks["first"] - timedelta(hours=1),
            end=clock.now,
        )
        late = await alert_periods(
            session,
            plugin_id="probe",
            start=marks["first"] + timedelta(minutes=5),
            end=clock.now,
        )
        before = await alert_periods(
            session,
            plugin_id="probe",
            start=marks["first"] - timedelta(hours=2),
            end=marks["first"] - timedelta(hours=1),
        )
        other_host = await alert_periods(
            session, plugin_id="probe", start=marks["first"], end=clock.now, host="web2"
        )
    spans = [(p.rule_id, p.host, p.severity, p.start, p.end) for p in whole]
    assert spans == [
        ("load-high", "web1", "critical", marks["first"], marks["resolved"]),
        ("load-high", "web1", "critical", marks["again"], None),
    ]
    # Firing when the range began: the span starts at the range's start.
    assert [(p.start, p.end) for p in late] == [
        (marks["first"] + timedelta(minutes=5), marks["resolved"]),
        (marks["again"], None),
    ]
    assert before == []
    assert other_host == []


async def test_an_alert_firing_since_before_the_range_covers_it(
    app: FastAPI, engine: AlertEngine, clock: Clock
) -> None:
    start = clock.now
    await engine.observe(run(clock, {"load": 99.0}))
    clock.advance(3 * 3600)
    async with app.state.db.session() as session:
        found = await alert_periods(
            session, plugin_id="probe", start=start + timedelta(hours=1), end=clock.now
        )
    assert [(p.start, p.end) for p in found] == [(start + timedelta(hours=1), None)]


async def test_the_periods_endpoint(
    app: FastAPI, engine: AlertEngine, clock: Clock, reader: httpx.AsyncClient
) -> None:
    marks = await _fire_twice(engine, clock)
    query = {
        "plugin_id": "probe",
        "start": (marks["first"] - timedelta(minutes=1)).isoformat(),
        "end": clock.now.isoformat(),
        "host": "web1",
    }
    answer = await reader.get("/api/alerts/periods", params=query)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [(i["rule_id"], i["end"] is None) for i in items] == [
        ("load-high", False),
        ("load-high", True),
    ]
    naive = await reader.get(
        "/api/alerts/periods",
        params={**query, "start": query["start"].removesuffix("+00:00"), "end": query["end"]},
    )
    assert naive.json() == answer.json(), "a time without a zone is UTC"
    backwards = await reader.get(
        "/api/alerts/periods", params={**query, "end": query["start"], "start": query["end"]}
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["message"] == "start must be before end"
    missing = await reader.get("/api/alerts/periods", params={"plugin_id": "probe"})
    assert missing.status_code == 422


async def test_threshold_lines_of_the_rules_in_force(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    change = {"changes": {"threshold": 95, "clear": 85}}
    assert (
        await client.put("/api/alerts/rules/probe/load-high/override", json=change)
    ).status_code == 200
    off = {"enabled": False}
    assert (
        await client.put("/api/alerts/rules/probe/disk-full/override", json=off)
    ).status_code == 200
    metadata = await app.state.manager.metadata_for("probe")
    async with app.state.db.session() as session:
        rules = await rules_in_force(session, app.state.manager, plugin_id="probe")
    assert {r.rule.id for r in rules} >= {"load-high", "disk-full", "disk-hot", "silent"}
    lines = threshold_lines(rules, metadata.metrics)
    assert {
        name: [(t.rule_id, t.value, t.clear) for t in found] for name, found in lines.items()
    } == {
        "load": [("load-high", 95.0, 85.0)],
        # A rate rule in count/min on a counter, whose chart shows a rate per second.
        "errors": [("errors-growing", 0.0, None)],
    }


def _rule(**fields: Any) -> RuleInForce:
    return RuleInForce("probe", AlertRule(**fields), "user", True, False)


def test_threshold_lines_are_in_the_unit_the_chart_shows() -> None:
    metrics = [
        MetricField(name="uptime", unit="s"),
        MetricField(name="sent", unit="bytes", kind=MetricKind.COUNTER),
        MetricField(name="free", unit="bytes"),
    ]
    rules = [
        _rule(id="short", metric="uptime", op="<", threshold=5, clear=10, unit="min"),
        _rule(id="busy", kind="rate", metric="sent", threshold=6, unit="MiB/min"),
        # A threshold rule on a counter compares the total, which the chart does not show.
        _rule(id="total", metric="sent", threshold=1000),
        _rule(id="low", metric="free", op="<", threshold=1, unit="GiB"),
    ]
    lines = threshold_lines(rules, metrics)
    shown = {
        name: [(t.rule_id, t.op, t.value, t.clear) for t in found] for name, found in lines.items()
    }
    assert shown == {
        "uptime": [("short", "<", 300.0, 600.0)],
        "sent": [("busy", ">", 6 * 1024**2 / 60, None)],
        "free": [("low", "<", float(1024**3), None)],
    }


@pytest.mark.parametrize(
    "bounds",
    [
        ("0001-01-01T00:30:00+01:00", "2026-12-01T00:00:00Z"),
        ("2026-12-01T00:00:00Z", "9999-12-31T23:30:00-05:00"),
        ("not-a-time", "2026-12-01T00:00:00Z"),
    ],
)
async def test_periods_at_the_edges_of_time_are_refused_not_crashed(
    reader: httpx.AsyncClient, bounds: tuple[str, str]
) -> None:
    start, end = bounds
    answer = await reader.get(
        "/api/alerts/periods", params={"plugin_id": "probe", "start": start, "end": end}
    )
    assert answer.status_code == 422, answer.text


async def test_firing_by_severity_is_what_metrics_shows(
    app: FastAPI, engine: AlertEngine, clock: Clock, reader: httpx.AsyncClient
) -> None:
    # load-high (critical) fires at once; disk-full (warning) waits 60 s: pending.
    await engine.observe(run(clock, {"load": 99.0, "disks": {"sda": {"percent": 97.0}}}))
    async with app.state.db.session() as session:
        assert await firing_by_severity(session) == {"critical": 1}
    page = (await reader.get("/metrics")).text
    assert 'unity_alerts_firing{severity="critical"} 1.0' in page
    assert 'unity_alerts_firing{severity="warning"} 0.0' in page
