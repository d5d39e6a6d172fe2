"""``GET /metrics``: declared plugin metrics and the hub's own counters, for Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.api.helpers import API, insert_documents


async def scrape(client: httpx.AsyncClient) -> dict[str, list[Sample]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
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
    assert value(samples, "unity_counter_value", host="test-host") == 42.5
    assert value(samples, "unity_counter_disks_used", host="test-host", disks="sda") == 100
    assert value(samples, "unity_counter_disks_used", host="test-host", disks="sdb") == 200
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
    assert value(samples, "unity_counter_value", host="nas") == 2.0
    assert value(samples, "unity_counter_value", host="pi") == 3.0
    assert value(samples, "unity_counter_runs_total", host="nas") == 8
    assert value(samples, "unity_counter_disks_used", host="pi", disks="mmcblk0") == 9
    assert [s.labels["host"] for s in samples["unity_counter_runs_total"]] == ["nas"]


async def test_non_numeric_values_are_left_out(app: FastAPI, client: httpx.AsyncClient) -> None:
    await insert_documents(
        app, "counter", [("nas", datetime.now(UTC), {"value": "n/a", "runs": True, "label": 5})]
    )
    samples = await scrape(client)
    assert "unity_counter_value" not in samples
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
    assert value(samples, "unity_counter_value", host="test-host") == 42.5
