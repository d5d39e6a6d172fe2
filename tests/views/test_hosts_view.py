"""Host cards and the host state rule, on SQLite and PostgreSQL, with set timestamps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.support import sample_plugins
from tests.support.hosts import (
    add_agent_host,
    add_documents,
    add_instance,
    disk_document,
    system_document,
)
from unity.plugins.hosts import host_state
from unity.storage.models import Host
from unity.storage.types import utcnow
from unity.views import host_cards
from unity.views.hosts import REPORTED
from unity_sdk import PluginState

NOW = utcnow()


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [sample_plugins.CounterPlugin]


def _agent(seen_ago: float | None, instances: list[tuple[PluginState, float]]) -> PluginState:
    return host_state(
        kind="agent",
        last_seen_at=None if seen_ago is None else NOW - timedelta(seconds=seen_ago),
        poll_seconds=10,
        instances=instances,
        missed=3,
        now=NOW,
    )


def test_the_state_rule() -> None:
    healthy, degraded = PluginState.HEALTHY, PluginState.DEGRADED
    # Stale after 3 x max(poll 10 s, shortest instance interval).
    assert _agent(29, [(healthy, 5)]) is healthy
    assert _agent(31, [(healthy, 5)]) is PluginState.STALE, "3 x poll (10 s)"
    assert _agent(170, [(healthy, 60), (healthy, 300)]) is healthy
    assert _agent(181, [(healthy, 60), (healthy, 300)]) is PluginState.STALE, "3 x 60 s"
    assert _agent(31, []) is PluginState.STALE, "no instances: the poll period"
    assert _agent(100, [(PluginState.DISABLED, 10), (healthy, 60)]) is healthy, (
        "a disabled instance's interval does not count"
    )
    # Otherwise the worst state of its instances.
    assert _agent(1, [(healthy, 60), (degraded, 60)]) is degraded
    assert _agent(1, [(PluginState.UNHEALTHY, 60), (PluginState.FAILING, 60)]) is (
        PluginState.FAILING
    )
    assert _agent(1, [(PluginState.STALE, 60), (degraded, 60)]) is PluginState.STALE
    assert _agent(1, [(PluginState.NOT_APPLICABLE, 60)]) is healthy, "nothing to watch is fine"
    assert _agent(1, [(PluginState.DISABLED, 60), (PluginState.NOT_LOADED, 60)]) is healthy
    assert _agent(1, [(PluginState.UNKNOWN, 60), (healthy, 60)]) is PluginState.UNKNOWN
    assert _agent(None, []) is PluginState.UNKNOWN, "never called"
    hub = host_state(
        kind="hub", last_seen_at=NOW - timedelta(days=1), poll_seconds=0, instances=[],
        missed=3, now=NOW,
    )  # fmt: skip
    assert hub is healthy, "the hub is never stale: it is the one asking"


async def test_an_agent_host_turns_stale_when_its_agent_stops_calling(app: FastAPI) -> None:
    db = app.state.db
    manager = app.state.manager
    await add_agent_host(db, "nas", poll_seconds=10)
    system = await add_instance(db, "system-info", "nas", config={"interval": 60})
    await add_documents(db, system, "nas.lan", [system_document(5, 6)])
    async with db.session() as session:
        fresh = {c.id: c for c in await host_cards(session, manager)}
    assert fresh["nas"].state is PluginState.HEALTHY
    assert fresh["nas"].cpu is not None
    assert fresh["nas"].cpu.value == 5
    assert [s.label for s in fresh["nas"].sparks] == ["CPU", "Memory"]
    # The agent stops: 3 x 60 s (its shortest instance interval) pass, and a bit.
    async with db.session() as session:
        await session.execute(
            update(Host)
            .where(Host.id == "nas")
            .values(last_seen_at=utcnow() - timedelta(seconds=181))
        )
    async with db.session() as session:
        later = {c.id: c for c in await host_cards(session, manager)}
    assert later["nas"].state is PluginState.STALE
    assert later["nas"].stale
    assert later["test-host"].state is not PluginState.STALE


async def test_numbers_come_from_system_info_and_the_root_filesystem(app: FastAPI) -> None:
    db = app.state.db
    manager = app.state.manager
    await add_agent_host(db, "nas")
    system = await add_instance(db, "system-info", "nas")
    disk = await add_instance(db, "disk-monitor", "nas", state="failing")
    await add_documents(
        db, system, "nas.lan", [system_document(10, 20), system_document(30, 40)], every=60
    )
    await add_documents(db, disk, "nas.lan", [disk_document(70.0, 99.0)])
    async with db.session() as session:
        cards = await host_cards(session, manager)
    nas = next(c for c in cards if c.id == "nas")
    readings = [nas.cpu, nas.memory, nas.disk]
    assert [r.value if r else None for r in readings] == [30.0, 40.0, 70.0]
    assert nas.state is PluginState.FAILING
    assert [s.label for s in nas.sparks] == ["CPU", "Memory", "Disk"]
    disk_spark = nas.sparks[2]
    assert (disk_spark.low, disk_spark.high) == (70.0, 70.0), "the root filesystem's series"
    assert nas.platform.cpu_count == 4
    assert nas.agent is not None


async def test_hub_card_first_and_other_hosts_as_reported_cards(app: FastAPI) -> None:
    db = app.state.db
    manager = app.state.manager
    await manager.enable("counter")
    await manager.execute("counter")
    await add_agent_host(db, "aaa")
    # A document of the hub's plugin about another machine (an SSH target, say).
    await add_documents(db, "counter", "nas-over-ssh", [{"count": 1}])
    async with db.session() as session:
        cards = await host_cards(session, manager)
    assert [(c.id, c.kind) for c in cards] == [
        ("test-host", "hub"),
        ("aaa", "agent"),
        ("nas-over-ssh", REPORTED),
    ]
    assert [p.id for p in cards[0].plugins] == ["counter"]
    assert cards[0].updated_at is not None, "the hub's own document"
    assert cards[2].state is PluginState.HEALTHY
