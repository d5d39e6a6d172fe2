"""``/metrics`` with agents: their instances are exported in the catalogue plugin's
families, next to the hub's own plugin of that type, one family per name, labelled
by host id -- and ``promtool check metrics`` accepts the page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.agents.support import API, auth, joined, sample
from tests.support.promtool import promtool_check
from unity.prometheus import metric_families
from unity.storage.models import LatestMetric
from unity_catalogue.disk_monitor import DiskMonitorPlugin
from unity_catalogue.network_monitor import NetworkMonitorPlugin
from unity_catalogue.process_monitor import ProcessMonitorPlugin
from unity_catalogue.system_info import SystemInfoPlugin
from unity_sdk import PluginBase

PSUTIL_FOUR: list[type[PluginBase[Any]]] = [
    SystemInfoPlugin,
    ProcessMonitorPlugin,
    DiskMonitorPlugin,
    NetworkMonitorPlugin,
]


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return list(PSUTIL_FOUR)


async def _report_real_collections(anon: httpx.AsyncClient, key: str, host_id: str) -> None:
    """What the agent does: run each of the four here and push the documents."""
    for cls in PSUTIL_FOUR:
        plugin = cls()
        document = await plugin.collect_data()
        instance = f"{plugin.get_metadata().id}@{host_id}"
        batch = {"batch_id": uuid.uuid4().hex, "samples": [sample(f"{host_id}.lan", document)]}
        sent = await anon.post(f"{API}/{instance}/metrics", json=batch, headers=auth(key))
        assert sent.status_code == 200, sent.text


def _help_names(page: str) -> list[str]:
    return [line.split(" ", 3)[2] for line in page.splitlines() if line.startswith("# HELP ")]


async def test_two_agents_and_the_hub_share_the_catalogue_families(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    for cls in PSUTIL_FOUR:
        plugin_id = cls().get_metadata().id
        assert (await client.post(f"{API}/{plugin_id}/enable")).status_code == 200
        ran = await client.post(f"{API}/{plugin_id}/execute")
        assert ran.status_code == 200, ran.text
        assert ran.json()["status"] == "success", ran.text
    for host_id in ("nas", "pi"):
        await _report_real_collections(anon, await joined(client, anon, host_id), host_id)

    page = (await reader.get("/metrics")).text
    names = _help_names(page)
    assert len(names) == len(set(names)), "one family per name"
    assert not [n for n in names if "nas" in n or "pi_" in n or "@" in n]
    hosts: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            if "host" in s.labels:
                hosts.setdefault(s.name, set()).add(s.labels["host"])
    for name in (
        "unity_system_info_cpu_ratio",
        "unity_process_monitor_total_value",
        "unity_network_monitor_totals_sent_bytes_total",
    ):
        assert hosts.get(name) == {"test-host", "nas", "pi"}, (name, hosts.get(name))
    promtool_check(page)


def _latest(plugin_id: str, host: str, data: dict[str, Any]) -> LatestMetric:
    return LatestMetric(plugin_id=plugin_id, host=host, timestamp=datetime.now(UTC), data=data)


def test_a_series_two_members_give_is_exported_once() -> None:
    """An agent's host id that equals the hub's own host label (UNITY_HOST_ID set apart
    from the hostname) would give one series twice: the hub's own value is kept."""
    metadata = SystemInfoPlugin().get_metadata()
    members = [
        ("system-info", metadata.metrics, [_latest("system-info", "pi", {"cpu": {"percent": 10}})]),
        (
            "system-info@pi",
            metadata.metrics,
            [_latest("system-info@pi", "pi", {"cpu": {"percent": 90}, "uptime": 5})],
        ),
    ]
    families = list(metric_families("system-info", members))
    registry = CollectorRegistry(auto_describe=False)

    class Snapshot:
        def collect(self) -> list[Any]:
            return families

    registry.register(Snapshot())  # type: ignore[arg-type]
    page = generate_latest(registry).decode()
    assert 'unity_system_info_cpu_ratio{host="pi"} 0.1\n' in page
    assert page.count("unity_system_info_cpu_ratio{") == 1
    # What only the instance gave is there.
    assert 'unity_system_info_uptime_seconds{host="pi"} 5.0' in page
    promtool_check(page)
