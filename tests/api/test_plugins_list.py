"""``GET /api/plugins/v2``: filters, pagination and the summary of each plugin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import API, error_locs, error_of
from tests.support import sample_plugins
from unity.storage import registry
from unity_sdk import PluginBase, PluginCategory, PluginMetadata

SAMPLE_IDS = [
    "auth-failing",
    "blocking",
    "configured",
    "counter",
    "failing",
    "hanging",
    "json-schema",
]


class UptimePlugin(PluginBase):
    """The one plugin of another category, so the category filter has something to drop."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="uptime", name="Uptime", version="2.1.0", category=PluginCategory.SYSTEM
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"uptime": 1.0}


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [*sample_plugins.ALL, UptimePlugin]


@pytest.fixture
async def external_row(app: FastAPI) -> str:
    """A registry row for an external plugin: known to the hub, code not loaded here."""
    metadata = PluginMetadata(
        id="remote-ups", name="Remote UPS", version="0.3.0", category=PluginCategory.POWER
    )
    async with app.state.db.session() as session:
        await registry.sync_plugin(session, metadata=metadata, external=True)
    return metadata.id


async def ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get(API, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_lists_every_plugin_sorted_by_id(client: httpx.AsyncClient) -> None:
    response = await client.get(API)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == sorted([*SAMPLE_IDS, "uptime"])
    assert body["next_cursor"] is None
    assert body["load_failures"] == []
    uptime = next(item for item in body["items"] if item["id"] == "uptime")
    assert uptime == {
        "id": "uptime",
        "name": "Uptime",
        "version": "2.1.0",
        "description": "",
        "category": "system",
        "enabled": False,
        "external": False,
        "loaded": True,
        "state": "disabled",
        "health": {"status": "unknown", "message": "", "checked_at": None},
        "interval": 60.0,
        "run_count": 0,
        "last_run_at": None,
        "last_success_at": None,
        "last_error": None,
    }


async def test_category_filter(client: httpx.AsyncClient) -> None:
    assert await ids(client, category="system") == ["uptime"]
    assert await ids(client, category="custom") == SAMPLE_IDS
    assert await ids(client, category="thermal") == []


async def test_enabled_filter_follows_enable_and_disable(client: httpx.AsyncClient) -> None:
    assert await ids(client, enabled="true") == []
    assert (await client.post(f"{API}/counter/enable")).status_code == 200
    assert (await client.post(f"{API}/uptime/enable")).status_code == 200
    assert await ids(client, enabled="true") == ["counter", "uptime"]
    assert "counter" not in await ids(client, enabled="false")
    assert len(await ids(client, enabled="false")) == len(SAMPLE_IDS) - 1
    listed = (await client.get(API, params={"enabled": "true"})).json()["items"]
    assert all(item["enabled"] and item["state"] != "disabled" for item in listed)
    assert (await client.post(f"{API}/counter/disable")).status_code == 200
    assert await ids(client, enabled="true") == ["uptime"]


async def test_external_filter(client: httpx.AsyncClient, external_row: str) -> None:
    assert await ids(client, external="true") == [external_row]
    assert external_row not in await ids(client, external="false")
    assert await ids(client, external="true", category="power") == [external_row]
    assert await ids(client, external="true", category="system") == []
    item = (await client.get(API, params={"external": "true"})).json()["items"][0]
    assert item["external"] is True
    assert item["loaded"] is False


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/uptime/enable")).status_code == 200
    assert await ids(client, category="system", enabled="true") == ["uptime"]
    assert await ids(client, category="custom", enabled="true") == []
    assert await ids(client, category="system", enabled="false") == []


async def test_pagination_walks_every_plugin_once(
    client: httpx.AsyncClient, external_row: str
) -> None:
    expected = sorted([*SAMPLE_IDS, "uptime", external_row])
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(API, params=params)).json()
        pages += 1
        assert 1 <= len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == expected
    assert pages == 3


async def test_a_page_exactly_as_long_as_the_rest_has_no_next_cursor(
    client: httpx.AsyncClient,
) -> None:
    everything = await ids(client)
    body = (await client.get(API, params={"limit": len(everything)})).json()
    assert body["next_cursor"] is None
    body = (await client.get(API, params={"limit": len(everything) - 1})).json()
    assert body["next_cursor"] == everything[-2]
    last = (await client.get(API, params={"cursor": body["next_cursor"]})).json()
    assert [item["id"] for item in last["items"]] == everything[-1:]


async def test_limit_above_the_cap_is_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    cap = app.state.settings.max_page_size
    assert (await client.get(API, params={"limit": cap})).status_code == 200
    error = error_of(await client.get(API, params={"limit": cap + 1}), 422)
    assert str(cap) in error["message"]


async def test_bad_paging_parameters_are_422(client: httpx.AsyncClient) -> None:
    assert error_locs(await client.get(API, params={"limit": 0})) == {("query", "limit")}
    assert error_locs(await client.get(API, params={"limit": "ten"})) == {("query", "limit")}
    assert error_locs(await client.get(API, params={"cursor": "Not An Id"})) == {
        ("query", "cursor")
    }
    assert error_locs(await client.get(API, params={"enabled": "maybe"})) == {("query", "enabled")}
    assert error_locs(await client.get(API, params={"external": "2"})) == {("query", "external")}
