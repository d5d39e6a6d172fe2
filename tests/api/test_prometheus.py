"""``GET /metrics``: declared plugin metrics and the hub's own counters, for Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.api.helpers import API, client_for, insert_documents, issue_token, running_app
from tests.support.promtool import promtool_check
from unity.auth.tokens import Scope
from unity.settings import Settings
from unity.storage import registry
from unity_sdk import MetricField, MetricKind, PluginBase, PluginMetadata


async def scrape(client: httpx.AsyncClient) -> dict[str, list[Sample]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return await scrape_text(response.text)


async def scrape_text(page: str) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matches = [s.value for s in samples.get(name, []) if s.labels == labels]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


async def test_declared_metrics_of_a_run_are_exported(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/counter/execute")).json()["status"] == "success"
    samples = await scrape(client)
    assert value(samples, "unity_counter_runs_total", host="test-host") == 1
    # Declared in percent, exported as a 0-1 ratio; one series per disk, labelled disk.
    assert value(samples, "unity_counter_value_ratio", host="test-host") == 0.425
    assert value(samples, "unity_counter_disk_used_bytes", host="test-host", disk="sda") == 100
    assert value(samples, "unity_counter_disk_used_bytes", host="test-host", disk="sdb") == 200
    info = samples["unity_counter_label_info"]
    assert [(s.labels, s.value) for s in info] == [({"host": "test-host", "value": "hello"}, 1)]


async def test_only_the_latest_document_per_host_is_exported(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    await insert_documents(
        app,
        "counter",
        [
            ("nas", now - timedelta(minutes=2), {"value": 1.0, "runs": 7}),
            ("nas", now - timedelta(minutes=1), {"value": 2.0, "runs": 8}),
            ("pi", now - timedelta(minutes=1), {"value": 3.0, "disks": {"mmcblk0": {"used": 9}}}),
        ],
    )
    # An older document arriving late does not move the latest value back.
    await insert_documents(app, "counter", [("nas", now - timedelta(hours=1), {"value": -1.0})])
    samples = await scrape(client)
    assert value(samples, "unity_counter_value_ratio", host="nas") == 0.02
    assert value(samples, "unity_counter_value_ratio", host="pi") == 0.03
    assert value(samples, "unity_counter_runs_total", host="nas") == 8
    assert value(samples, "unity_counter_disk_used_bytes", host="pi", disk="mmcblk0") == 9
    assert [s.labels["host"] for s in samples["unity_counter_runs_total"]] == ["nas"]


async def test_non_numeric_values_are_left_out(app: FastAPI, client: httpx.AsyncClient) -> None:
    await insert_documents(
        app, "counter", [("nas", datetime.now(UTC), {"value": "n/a", "runs": True, "label": 5})]
    )
    samples = await scrape(client)
    assert "unity_counter_value_ratio" not in samples
    assert "unity_counter_runs_total" not in samples
    assert value(samples, "unity_counter_label_info", host="nas", value="5") == 1


async def test_runs_are_counted_by_plugin_and_status(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.post(f"{API}/counter/execute")
    await client.post(f"{API}/failing/execute")
    await client.post(f"{API}/failing/execute")
    await client.post(f"{API}/hanging/execute")
    samples = await scrape(client)
    runs = "unity_plugin_runs_total"
    assert value(samples, runs, plugin="counter", status="success") == 3
    assert value(samples, runs, plugin="failing", status="failed") == 2
    assert value(samples, runs, plugin="hanging", status="timed_out") == 1
    assert {(s.labels["plugin"], s.labels["status"]) for s in samples[runs]} == {
        ("counter", "success"),
        ("failing", "failed"),
        ("hanging", "timed_out"),
    }
    count = "unity_plugin_run_duration_seconds_count"
    assert value(samples, count, plugin="counter") == 3
    assert value(samples, count, plugin="hanging") == 1
    assert value(samples, "unity_plugin_run_duration_seconds_sum", plugin="hanging") >= 0.4


async def test_a_fresh_hub_exports_no_plugin_values(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    assert not [name for name in samples if name.startswith("unity_counter_")]
    assert "unity_plugin_runs_total" not in samples
    assert value(samples, "unity_plugin_load_failures_total") == 0


async def test_plugins_without_declared_metrics_export_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.post(f"{API}/counter/execute")
    await insert_documents(app, "failing", [("nas", datetime.now(UTC), {"value": 1.0})])
    samples = await scrape(client)
    # ``failing`` declares no metrics, so its documents add nothing.
    assert not [name for name in samples if name.startswith("unity_failing")]
    assert value(samples, "unity_counter_value_ratio", host="test-host") == 0.425


def _declaring(plugin_id: str, metric: MetricField) -> type[PluginBase]:
    class Declaring(PluginBase):
        def get_metadata(self) -> PluginMetadata:
            return PluginMetadata(id=plugin_id, name=plugin_id, version="1.0.0", metrics=[metric])

        async def collect_data(self) -> dict[str, Any]:
            return {}

    return Declaring


async def test_a_family_already_on_the_page_is_left_out(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Plugin ids "web" and "web-app" both reach unity_web_app_hits; a plugin
    # called "plugin" would reach the hub's own unity_plugin_runs_total.
    classes = [
        _declaring("web", MetricField(name="app.hits")),
        _declaring("web-app", MetricField(name="hits")),
        _declaring("plugin", MetricField(name="runs", kind=MetricKind.COUNTER)),
    ]
    async with running_app(settings, classes) as app:
        now = datetime.now(UTC)
        await insert_documents(app, "web", [("nas", now, {"app": {"hits": 1}})])
        await insert_documents(app, "web-app", [("nas", now, {"hits": 2})])
        await insert_documents(app, "plugin", [("nas", now, {"runs": 3})])
        admin = await issue_token(app, Scope.ADMIN)
        async with client_for(app, admin.value) as client:
            assert (await client.post(f"{API}/web/execute")).status_code == 200
        token = await issue_token(app, Scope.READ)
        async with client_for(app, token.value) as reader:
            response = await reader.get("/metrics")
    page = response.text
    assert page.count("# HELP unity_web_app_hits ") == 1
    assert page.count("# HELP unity_plugin_runs_total ") == 1
    samples = await scrape_text(page)
    assert value(samples, "unity_web_app_hits", host="nas") == 1
    assert [s.labels for s in samples["unity_plugin_runs_total"]] == [
        {"plugin": "web", "status": "success"}
    ]
    clashes = [r.getMessage() for r in caplog.records if r.name == "unity.prometheus"]
    assert any(
        "plugin web-app: Prometheus family unity_web_app_hits is already on /metrics" in m
        for m in clashes
    )
    promtool_check(page)


async def test_external_plugins_stay_and_uninstalled_ones_leave(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Metadata comes from the catalogue: a registry row serves an external
    plugin, but not an in-hub plugin whose code is gone (its values are old)."""
    metric = MetricField(name="temperature", unit="°C")
    async with app.state.db.session() as session:
        for plugin_id, external in (("remote-ups", True), ("removed", False)):
            metadata = PluginMetadata(
                id=plugin_id, name=plugin_id, version="1.0.0", metrics=[metric]
            )
            await registry.sync_plugin(session, metadata=metadata, external=external)
    now = datetime.now(UTC)
    for plugin_id in ("remote-ups", "removed"):
        await insert_documents(app, plugin_id, [("nas", now, {"temperature": 40.5})])
    samples = await scrape(client)
    assert value(samples, "unity_remote_ups_temperature_celsius", host="nas") == 40.5
    assert "unity_removed_temperature_celsius" not in samples
