"""The history view: runs, documents and series of real runs, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.support.sample_plugins import CounterPlugin, FailingPlugin
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginNotFoundError
from unity.views import history
from unity_sdk import RunStatus


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [CounterPlugin, FailingPlugin]


@pytest.fixture
async def ran(app: FastAPI) -> PluginManager:
    """Two runs of counter, one of failing."""
    manager: PluginManager = app.state.manager
    for plugin_id in ("counter", "counter", "failing"):
        await manager.execute(plugin_id)
    return manager


async def test_executions_filter_by_outcome(app: FastAPI, ran: PluginManager) -> None:
    async with app.state.db.session() as session:
        runs, cursor = await history.executions(session, "counter")
        failed, _ = await history.executions(session, "failing", status=RunStatus.FAILED)
        none, _ = await history.executions(session, "counter", status=RunStatus.FAILED)
        first, more = await history.executions(session, "counter", limit=1)
        with pytest.raises(PluginNotFoundError):
            await history.executions(session, "no-such-plugin")
    assert [r.status for r in runs] == ["success", "success"]
    assert cursor is None
    assert [RunStatus(r.status) for r in failed] == [RunStatus.FAILED]
    assert none == []
    assert len(first) == 1
    assert more is not None


async def test_documents_refuse_a_backwards_range(app: FastAPI, ran: PluginManager) -> None:
    now = datetime.now(UTC)
    async with app.state.db.session() as session:
        rows, _ = await history.metric_documents(session, "counter", end=now + timedelta(1))
        with pytest.raises(history.QueryError, match="start must be before end"):
            await history.metric_documents(session, "counter", start=now, end=now)
        with pytest.raises(history.QueryError, match="ordinary dates"):
            await history.metric_documents(session, "counter", end=datetime.min)
    assert [r.data["runs"] for r in rows] == [2, 1]


async def test_series_have_every_bucket_and_items(app: FastAPI, ran: PluginManager) -> None:
    # Buckets are whole steps since the epoch: a range on whole minutes has ten.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=9)
    end = start + timedelta(minutes=10)
    async with app.state.db.session() as session:
        gauge = await history.metric_series(
            session, "counter", "value", start=start, end=end, step=60
        )
        disks = await history.metric_series(
            session, "counter", "disks.*.used", start=start, end=end
        )
        picked = await history.metric_series(
            session, "counter", "disks.*.used", start=start, end=end, items=["sdb"]
        )
    assert len(gauge.points) == 10
    assert [(p.avg, p.count) for p in gauge.points if p.count] == [(42.5, 2)]
    assert gauge.points[-1].count == 2
    assert gauge.unit == "%"
    assert gauge.items is None
    assert gauge.step == 60
    assert disks.step == 2, "600 s over ~300 points"
    assert [s.item for s in disks.items or []] == ["sda", "sdb"]
    assert [s.item for s in picked.items or []] == ["sdb"]


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("nope", {}, "declares no metric 'nope'"),
        ("label", {}, "not a numeric series"),
        ("value", {"items": ["sda"]}, "has no items to pick"),
        ("value", {"step": 1, "start": datetime(2020, 1, 1, tzinfo=UTC)}, "more than 10000"),
    ],
)
async def test_series_questions_that_cannot_be_answered(
    app: FastAPI, name: str, extra: dict[str, Any], message: str
) -> None:
    async with app.state.db.session() as session:
        with pytest.raises(history.QueryError, match=message):
            await history.metric_series(session, "counter", name, **extra)


def test_default_steps_are_whole_minutes_or_hours() -> None:
    from unity.views.history import tier_step

    assert [tier_step(s) for s in (1, 59, 60, 61, 288, 2016, 3599, 3600, 8640)] == [
        1,
        59,
        60,
        120,
        300,
        2040,
        3600,
        3600,
        10800,
    ]
