"""What the overview and the catalogue show, from real runs of small plugins."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.sample_plugins import CounterPlugin, FailingPlugin
from tests.web.conftest import login
from unity_sdk import MetricField, PluginBase, PluginCategory, PluginMetadata


class HostVitalsPlugin(PluginBase):
    """Reports under the metric names the overview takes its headline numbers from."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="host-vitals",
            name="Host vitals",
            version="1.0.0",
            category=PluginCategory.SYSTEM,
            metrics=[
                MetricField(name="cpu.percent", unit="%"),
                MetricField(name="memory.percent", unit="%"),
                MetricField(name="max_used_percent", unit="%"),
                MetricField(name="max_temperature", unit="°C"),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        return {
            "cpu": {"percent": 12.5},
            "memory": {"percent": 40.0},
            "max_used_percent": 91.0,
            "max_temperature": 48.0,
        }


class BrokenIdPlugin(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="Broken_Id", name="Broken", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [HostVitalsPlugin, CounterPlugin, FailingPlugin, BrokenIdPlugin]


@pytest.fixture
async def browser(app: FastAPI, admin_token: str) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        await login(client, admin_token)
        yield client


async def test_hosts_show_headline_numbers_and_plugins_their_state(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    manager = app.state.manager
    for plugin_id in ("host-vitals", "failing"):
        await manager.enable(plugin_id)
        await manager.execute(plugin_id)
    fragment = (await browser.get("/live/overview")).text
    assert 'data-key="host-test-host"' in fragment
    assert "12.5%" in fragment
    assert "40.0%" in fragment
    assert 'value="91.0"' in fragment, "disk from max_used_percent"
    assert "48.0 °C" in fragment
    assert 'data-key="plugin-host-vitals"' in fragment
    assert 'data-key="plugin-counter"' not in fragment, "disabled plugins are only counted"
    assert "CollectionError: the service answered 500" in fragment
    assert "1 plugin failed to load" in fragment


async def test_the_catalogue_filters_and_explains_load_failures(browser: httpx.AsyncClient) -> None:
    page = (await browser.get("/plugins")).text
    assert "Failed to load (1)" in page
    assert "Broken_Id" in page
    assert page.count('class="card plugin-card"') == 3
    systems = (await browser.get("/plugins", params={"category": "system"})).text
    assert systems.count('class="card plugin-card"') == 1
    found = (await browser.get("/plugins", params={"q": "COUNT"})).text
    assert found.count('class="card plugin-card"') == 1
    assert 'href="/plugins/counter"' in found


async def test_host_cards_carry_last_hour_sparklines(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    manager = app.state.manager
    await manager.enable("host-vitals")
    await manager.execute("host-vitals")
    fragment = (await browser.get("/live/overview")).text
    card = fragment[fragment.index('data-key="host-test-host"') :]
    sparks = card[card.index('class="sparks"') : card.index("</dl>", card.index('class="sparks"'))]
    assert re.findall(r'data-spark="(\w+)"', sparks) == ["cpu", "memory", "disk"]
    assert sparks.count("<polyline points=") == 3, "one run of samples each, no gap yet"
    assert 'aria-label="CPU, last hour: 12.5% to 12.5%"' in sparks
