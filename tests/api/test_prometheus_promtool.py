"""The real ``/metrics`` page of a hub running every built-in, checked by ``promtool``.

Every built-in is enabled and run once; those that cannot collect on this
machine (no GPU, no broker...) simply have no samples. An external plugin
pushes samples too. A second page carries a synthetic document for every
built-in, so every declared metric's family is on a page promtool checks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import API, insert_documents
from tests.support.processes import free_port
from tests.support.promtool import promtool_check
from unity_catalogue import BUILTIN_PLUGINS
from unity_sdk import MetricKind, PluginMetadata

EXTERNAL = {
    "id": "nas-sensors",
    "name": "NAS sensors",
    "version": "1.0.0",
    "metrics": [
        {"name": "disks.*.temperature", "unit": "°C", "description": "Disk temperature"},
        {"name": "uptime_ms", "unit": "ms", "description": "Time since boot"},
        {"name": "disk_used", "unit": "%", "description": "Share of the disk in use"},
        {"name": "reads", "unit": "count", "kind": "counter", "description": "Reads"},
        {"name": "model", "kind": "info", "description": "NAS model"},
    ],
}
EXTERNAL_DATA = {
    "disks": {"sda": {"temperature": 41.5}, "sdb": {"temperature": 35}},
    "uptime_ms": 1500,
    "disk_used": 25,
    "reads": 7,
    "model": "DS920+",
}


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return list(BUILTIN_PLUGINS)


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean; the server answers every GET alike


@pytest.fixture
def web_server() -> Iterator[str]:
    """An HTTP server on loopback for http-check to reach."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def samples(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def value(page_samples: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in page_samples, (name, labels, [k for k in page_samples if k[0] == name])
    return page_samples[key]


async def _external_with_samples(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    enrollment = (await client.post("/api/enrollment-tokens", json={})).json()["token"]
    registered = await anon.post(
        f"{API}/register",
        json={"metadata": EXTERNAL, "hostname": "nas"},
        headers={"Authorization": f"Bearer {enrollment}"},
    )
    assert registered.status_code == 201, registered.text
    batch = {
        "batch_id": "batch-0001",
        "samples": [
            {"host": "nas", "timestamp": datetime.now(UTC).isoformat(), "data": EXTERNAL_DATA}
        ],
    }
    sent = await anon.post(
        f"{API}/nas-sensors/metrics",
        json=batch,
        headers={"Authorization": f"Bearer {registered.json()['api_key']}"},
    )
    assert sent.json() == {"stored": 1, "duplicate": False}


async def test_page_of_a_hub_running_every_builtin_passes_promtool(
    client: httpx.AsyncClient,
    reader: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    web_server: str,
) -> None:
    configs = {
        "http-check": {
            "endpoints": [
                {"name": "local", "url": web_server},
                {"name": "closed", "url": f"http://127.0.0.1:{free_port()}/", "timeout": 2},
            ]
        },
    }
    for plugin_id, config in configs.items():
        response = await client.put(f"{API}/{plugin_id}/config", json=config)
        assert response.status_code == 200, response.text
    ids = [cls().get_metadata().id for cls in BUILTIN_PLUGINS]
    for plugin_id in ids:
        # Some need config this machine cannot give (an iperf3 server...): they stay off.
        await client.post(f"{API}/{plugin_id}/enable")
    runs = await asyncio.gather(*(client.post(f"{API}/{i}/execute") for i in ids))
    collected = {
        i for i, run in zip(ids, runs, strict=True) if run.status_code == 200 and run.json()["data"]
    }
    assert {"system-info", "process-monitor", "network-monitor", "http-check"} <= collected
    await _external_with_samples(client, anon)

    response = await reader.get("/metrics")
    assert response.status_code == 200
    page = response.text
    found = samples(page)
    # http-check's count of endpoints up and each endpoint's up are two families now.
    assert value(found, "unity_http_check_endpoints_up", host="test-host") == 1
    assert value(found, "unity_http_check_endpoint_up", host="test-host", endpoint="local") == 1
    assert value(found, "unity_http_check_endpoint_up", host="test-host", endpoint="closed") == 0
    assert page.count("# HELP unity_http_check_endpoints_up ") == 1
    # The external plugin's latest sample, named and scaled by its declared metadata.
    temperature = "unity_nas_sensors_disk_temperature_celsius"
    assert value(found, temperature, host="nas", disk="sda") == 41.5
    assert value(found, temperature, host="nas", disk="sdb") == 35
    assert value(found, "unity_nas_sensors_uptime_seconds", host="nas") == 1.5
    assert value(found, "unity_nas_sensors_disk_used_ratio", host="nas") == 0.25
    assert value(found, "unity_nas_sensors_reads_total", host="nas") == 7
    assert value(found, "unity_nas_sensors_model_info", host="nas", value="DS920+") == 1
    assert "# HELP unity_nas_sensors_disk_temperature_celsius Disk temperature (celsius)" in page
    promtool_check(page)


def _synthetic_document(metadata: PluginMetadata) -> dict[str, Any]:
    """A document reaching every declared path, two items per ``*``."""
    document: dict[str, Any] = {}

    def put(node: dict[str, Any], path: tuple[str, ...], leaf: Any) -> None:
        head, rest = path[0], path[1:]
        for key in ("item-a", "item b") if head == "*" else (head,):
            if not rest:
                node.setdefault(key, leaf)
            elif isinstance(node.setdefault(key, {}), dict):
                put(node[key], rest, leaf)

    for field in metadata.metrics:
        put(document, field.path, 'text \\ "quoted"\n' if field.kind is MetricKind.INFO else 3)
    return document


async def test_every_declared_builtin_metric_passes_promtool(
    app: FastAPI, reader: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    metadata = [cls().get_metadata() for cls in BUILTIN_PLUGINS]
    for meta in metadata:
        await insert_documents(app, meta.id, [("nas", now, _synthetic_document(meta))])
    page = (await reader.get("/metrics")).text
    families = {f.name for f in text_string_to_metric_families(page)}
    declared = sum(len(m.metrics) for m in metadata)
    hub_own = ("unity_plugin_", "unity_sched", "unity_notifications_", "unity_alerts_firing")
    plugin_families = {f for f in families if not f.startswith(hub_own)}
    assert len(plugin_families) == declared
    promtool_check(page)
