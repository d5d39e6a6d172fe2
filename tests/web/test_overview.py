"""What the overview and the catalogue show, from real runs of small plugins."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import unity.web
from tests.api.helpers import issue_token, running_app
from tests.support.sample_plugins import CounterPlugin, FailingPlugin
from tests.web.conftest import login
from unity.auth.tokens import Scope
from unity.settings import Settings
from unity_sdk import (
    HealthState,
    HealthStatus,
    MetricField,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    PluginState,
)


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


class NothingHerePlugin(PluginBase):
    """Runs fine, but has nothing to watch on this host."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="nothing-here", name="Nothing here", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}

    async def health_check(self) -> HealthStatus:
        return HealthStatus(status=HealthState.NOT_APPLICABLE, message="no md arrays")


def tiles(fragment: str) -> dict[str, int]:
    found = re.findall(r'data-live="count-(\w+)">\s*<span class="tile-number">(\d+)<', fragment)
    return {state: int(count) for state, count in found}


async def test_an_uninstalled_plugin_is_counted_not_loaded(settings: Settings) -> None:
    async with running_app(settings, [CounterPlugin, NothingHerePlugin]) as first:
        for plugin_id in ("counter", "nothing-here"):
            await first.state.manager.enable(plugin_id)
            assert (await first.state.manager.execute(plugin_id)).status == "success"
        await first.state.manager.check_health("nothing-here")
    # The counter package is removed; its registry row (enabled, healthy) stays.
    async with running_app(settings, [NothingHerePlugin]) as second:
        token = await issue_token(second, Scope.ADMIN)
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            await login(client, token.value)
            fragment = (await client.get("/live/overview")).text
    counts = tiles(fragment)
    assert list(counts) == [state.value for state in PluginState]
    assert counts["not_loaded"] == 1
    assert counts["not_applicable"] == 1
    assert counts["healthy"] == 0, "a plugin whose code is gone is not healthy"
    row = fragment[fragment.index('data-key="plugin-counter"') :]
    assert 'data-state="not_loaded"' in row[: row.index("</tr>")]
    assert '<span class="badge state-not_applicable">not applicable</span>' in fragment


def test_every_state_has_a_badge_and_a_tile_style() -> None:
    css = (Path(unity.web.__file__).parent / "static" / "app.css").read_text()
    rules = {
        frozenset(s.strip() for s in selectors.split(",")): body
        for selectors, body in re.findall(r"^([^{}\n]+)\{([^}]*)\}", css, re.MULTILINE)
    }
    for state in PluginState:
        assert any(f".state-{state}" in selectors for selectors in rules), state
        assert any(f".state-tile-{state}" in selectors for selectors in rules), state
    neutral = next(body for s, body in rules.items() if ".state-not_applicable" in s)
    grey = next(body for s, body in rules.items() if ".state-disabled" in s)
    assert neutral == grey, "not applicable is no error: it looks like disabled"
