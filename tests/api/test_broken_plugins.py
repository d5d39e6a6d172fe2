"""A hub whose loader meets broken plugins lists the failures and serves the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import API, error_of, plugin_row
from tests.support.sample_plugins import CounterPlugin
from unity_sdk import PluginBase, PluginMetadata


class BadIdPlugin(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="Bad_Id", name="Bad", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}


class SyncCollectPlugin(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="sync-collect", name="Sync", version="1.0.0")

    def collect_data(self) -> dict[str, Any]:  # type: ignore[override]
        return {}


class GrumpyPlugin(PluginBase):
    """Loads fine, but refuses to start."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="grumpy", name="Grumpy", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {"mood": 0}

    async def on_enable(self) -> None:
        raise RuntimeError("not today")


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [CounterPlugin, BadIdPlugin, SyncCollectPlugin, GrumpyPlugin]


async def test_load_failures_are_listed_with_their_reason(client: httpx.AsyncClient) -> None:
    body = (await client.get(API)).json()
    assert [item["id"] for item in body["items"]] == ["counter", "grumpy"]
    failures = {f["name"]: f for f in body["load_failures"]}
    assert set(failures) == {"BadIdPlugin", "SyncCollectPlugin"}
    assert failures["BadIdPlugin"]["source"] == "builtin"
    assert "ValidationError" in failures["BadIdPlugin"]["error"]
    assert "collect_data must be an async method" in failures["SyncCollectPlugin"]["error"]
    # Filters narrow the plugins, never the failures: an operator must see them.
    assert len((await client.get(API, params={"enabled": "true"})).json()["load_failures"]) == 2


async def test_good_plugins_are_served_beside_the_broken(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/counter")).status_code == 200
    response = await client.post(f"{API}/counter/execute")
    assert response.status_code == 200
    assert response.json()["status"] == "success"
    error_of(await client.get(f"{API}/sync-collect"), 404)
    error_of(await client.post(f"{API}/sync-collect/execute"), 404)


async def test_load_failures_are_counted_on_metrics(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = [
        s for s in families["unity_plugin_load_failures"].samples if s.name.endswith("_total")
    ]
    assert sample.value == 2


async def test_a_plugin_whose_on_enable_fails_is_409_and_stays_disabled(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    error = error_of(await client.post(f"{API}/grumpy/enable"), 409)
    assert error["code"] == "conflict"
    assert "RuntimeError: not today" in error["message"]
    detail = (await client.get(f"{API}/grumpy")).json()
    assert detail["enabled"] is False
    assert "not today" in detail["last_error"]
    assert "grumpy" not in app.state.manager.scheduler
    assert (await plugin_row(app, "grumpy")).enabled is False
