"""The catalogue view: one metadata source and one state per plugin, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.support.sample_plugins import CounterPlugin, FailingPlugin
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginNotFoundError
from unity.storage import registry
from unity.storage.models import Plugin
from unity.storage.types import utcnow
from unity.views import catalogue
from unity_sdk import (
    HealthState,
    HealthStatus,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    PluginState,
)


class NothingHerePlugin(PluginBase):
    """Runs fine, but has nothing to watch on this host (no md arrays, say)."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="nothing-here", name="Nothing here", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}

    async def health_check(self) -> HealthStatus:
        return HealthStatus(status=HealthState.NOT_APPLICABLE, message="no md arrays")


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [CounterPlugin, FailingPlugin, NothingHerePlugin]


def _metadata(plugin_id: str, **extra: Any) -> PluginMetadata:
    return PluginMetadata(
        id=plugin_id,
        name=plugin_id.title(),
        version="0.1.0",
        category=PluginCategory.POWER,
        **extra,
    )


async def _row(app: FastAPI, plugin_id: str, *, external: bool, **values: Any) -> Plugin:
    """A registry row the hub did not write itself: an external plugin's, or one
    whose code is no longer installed."""
    async with app.state.db.session() as session:
        row, _ = await registry.sync_plugin(
            session, metadata=_metadata(plugin_id), external=external
        )
        for key, value in values.items():
            setattr(row, key, value)
    return await _read(app, plugin_id)


async def _read(app: FastAPI, plugin_id: str) -> Plugin:
    async with app.state.db.session() as session:
        row = await registry.get_plugin(session, plugin_id)
    assert row is not None
    return row


async def _update(app: FastAPI, plugin_id: str, **values: Any) -> Plugin:
    async with app.state.db.session() as session:
        row = await registry.get_plugin(session, plugin_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)
    return await _read(app, plugin_id)


async def _state(app: FastAPI, plugin_id: str) -> PluginState:
    return catalogue.state_of(app.state.manager, await _read(app, plugin_id))


async def test_metadata_comes_from_the_class_else_from_the_registry(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    loaded = catalogue.plugin_metadata(manager, await _read(app, "counter"))
    assert loaded is manager.plugins["counter"].metadata
    external = catalogue.plugin_metadata(manager, await _row(app, "ups", external=True))
    assert external is not None
    assert external.category is PluginCategory.POWER
    gone = catalogue.plugin_metadata(manager, await _row(app, "gone", external=False))
    assert gone is not None
    assert gone.name == "Gone"
    broken = await _update(app, "gone", plugin_metadata={"id": "gone", "version": 3})
    assert catalogue.plugin_metadata(manager, broken) is None


async def test_a_plugin_whose_code_is_gone_is_not_loaded_whatever_its_row_says(
    app: FastAPI,
) -> None:
    await _row(app, "gone", external=False, enabled=True, state="healthy", health_status="healthy")
    assert await _state(app, "gone") is PluginState.NOT_LOADED
    await _row(app, "remote", external=True, enabled=True, state="healthy")
    assert await _state(app, "remote") is PluginState.HEALTHY


async def test_runs_and_health_give_the_state_of_an_in_hub_plugin(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    assert await _state(app, "counter") is PluginState.DISABLED
    await manager.enable("counter")
    await manager.enable("failing")
    await manager.enable("nothing-here")
    await manager.execute("counter")
    await manager.execute("failing")
    await manager.execute("nothing-here")
    await manager.check_health("nothing-here")
    assert await _state(app, "counter") is PluginState.HEALTHY
    assert await _state(app, "failing") is PluginState.DEGRADED
    assert await _state(app, "nothing-here") is PluginState.NOT_APPLICABLE
    assert not PluginState.NOT_APPLICABLE.problem


async def test_an_in_hub_plugin_that_stopped_running_is_stale(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    await manager.enable("counter")
    await manager.execute("counter")
    missed = manager.settings.stale_after_missed
    interval = manager.plugins["counter"].interval
    timeout = manager.plugins["counter"].metadata.timeout
    row = await _read(app, "counter")
    assert row.last_run_at is not None
    just_in_time = row.last_run_at + timedelta(seconds=interval * missed + timeout - 1)
    too_late = row.last_run_at + timedelta(seconds=interval * missed + timeout + 1)
    assert catalogue.state_of(manager, row, now=just_in_time) is PluginState.HEALTHY
    assert catalogue.state_of(manager, row, now=too_late) is PluginState.STALE
    # Backoff spaces failing runs out: their failures show, not staleness.
    failing = await _update(app, "counter", consecutive_failures=2, state="degraded")
    assert catalogue.state_of(manager, failing, now=too_late) is PluginState.DEGRADED
    disabled = await _update(app, "counter", consecutive_failures=0, enabled=False)
    assert catalogue.state_of(manager, disabled, now=too_late) is PluginState.DISABLED


async def test_an_external_plugin_that_stopped_reporting_is_stale(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    seen = utcnow() - timedelta(minutes=10)
    row = await _row(
        app,
        "remote",
        external=True,
        enabled=True,
        state="healthy",
        last_seen_at=seen,
        config={"interval": 120},
    )
    missed = manager.settings.stale_after_missed
    assert catalogue.expected_interval(manager, row, catalogue.plugin_metadata(manager, row)) == 120
    limit = timedelta(seconds=120 * missed)
    before = catalogue.state_of(manager, row, now=seen + limit - timedelta(seconds=1))
    after = catalogue.state_of(manager, row, now=seen + limit + timedelta(seconds=1))
    assert (before, after) == (PluginState.HEALTHY, PluginState.STALE)
    # Without an interval of its own, the declared default applies.
    default = await _update(app, "remote", config={})
    assert catalogue.expected_interval(manager, default, _metadata("remote")) == 60.0
    never = await _update(app, "remote", last_seen_at=None, state="unknown")
    assert catalogue.state_of(manager, never) is PluginState.UNKNOWN


async def test_pages_walk_every_plugin_once_with_filters(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    await _row(app, "remote", external=True)
    async with app.state.db.session() as session:
        first, cursor = await catalogue.plugin_page(session, manager, limit=2)
        assert [p.id for p in first] == ["counter", "failing"]
        second, end = await catalogue.plugin_page(session, manager, after=cursor, limit=2)
        assert [p.id for p in second] == ["nothing-here", "remote"]
        assert end is None
        outside, _ = await catalogue.plugin_page(session, manager, external=True)
        assert [(p.id, p.loaded, p.external) for p in outside] == [("remote", False, True)]
        everything = await catalogue.every_plugin(session, manager, batch=3)
    assert [p.id for p in everything] == ["counter", "failing", "nothing-here", "remote"]
    assert {p.state for p in everything} == {PluginState.DISABLED}
    assert everything[0].declared is manager.plugins["counter"].metadata


async def test_detail_masks_secrets_and_knows_unknown_ids(app: FastAPI) -> None:
    manager: PluginManager = app.state.manager
    schema = {
        "type": "object",
        "properties": {"password": {"type": "string", "writeOnly": True}, "zone": {}},
    }
    metadata = _metadata("remote").model_dump(mode="json", exclude={"config_schema"})
    await _row(
        app,
        "remote",
        external=True,
        config={"password": "hunter2", "zone": "eu"},
        plugin_metadata={**metadata, "config_schema": schema},
    )
    async with app.state.db.session() as session:
        with pytest.raises(PluginNotFoundError):
            await catalogue.plugin_detail(session, manager, "no-such-plugin")
        detail = await catalogue.plugin_detail(session, manager, "remote")
    assert detail.config == {"password": "********", "zone": "eu"}
    assert detail.metadata["config_schema"] == schema
    await _update(app, "remote", plugin_metadata={"id": "remote", "version": 3})
    async with app.state.db.session() as session:
        unreadable = await catalogue.plugin_detail(session, manager, "remote")
    # Without a readable schema no value is known not to be secret.
    assert unreadable.config == {"password": "********", "zone": "********"}
    assert unreadable.declared is None
    assert unreadable.state is PluginState.DISABLED


async def test_external_plugins_are_listed_in_detail(app: FastAPI) -> None:
    seen = utcnow()
    await _row(app, "remote", external=True, enabled=True, last_seen_at=seen)
    async with app.state.db.session() as session:
        found = await catalogue.external_plugins(session, app.state.manager)
    assert [(p.id, p.last_seen_at) for p in found] == [("remote", seen)]
    assert catalogue.load_failures(app.state.manager) == []
