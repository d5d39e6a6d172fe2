"""Several hubs on one PostgreSQL: each transition is made, and told, once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.alerts.support import Clock, ProbePlugin, Recorder, enable, engine_for, run
from unity.storage.models import AlertTransition


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_engines_on_one_postgresql_notify_once(app: FastAPI) -> None:
    await enable(app)
    clock = Clock()
    first, second = Recorder(), Recorder()
    hub_a, hub_b = await engine_for(app, clock, first), await engine_for(app, clock, second)
    for value in (95.0, 95.0):  # both hubs see every run (an external batch, say)
        event = run(clock, {"load": value, "disks": {"sda": {"percent": 99.0}}})
        await asyncio.gather(hub_a.observe(event), hub_b.observe(event))
        clock.advance(30)
    clock.advance(60)
    await asyncio.gather(hub_a.tick(), hub_b.tick())  # disk-full's `for` has passed
    clock.advance(app.state.settings.alert_repeat_seconds)
    await asyncio.gather(hub_a.tick(), hub_b.tick())  # one repeat of each
    event = run(clock, {"load": 10.0, "disks": {"sda": {"percent": 10.0}}})
    await asyncio.gather(hub_a.observe(event), hub_b.observe(event))
    notices = [*first.notices, *second.notices]
    told = sorted((n.rule_id, n.status) for n in notices if n.rule_id != "silent")
    # Which hub tells is whichever claims the notice first; together, they tell once.
    assert first.notices or second.notices
    assert told == [
        ("disk-full", "firing"),
        ("disk-full", "firing"),
        ("disk-full", "resolved"),
        ("load-high", "firing"),
        ("load-high", "firing"),
        ("load-high", "resolved"),
    ]
    async with app.state.db.session() as session:
        stored = await session.scalar(
            select(func.count()).where(AlertTransition.rule_id != "silent")
        )
    # load-high: inactive->firing->resolved; disk-full: inactive->pending->firing->resolved
    assert stored == 5
