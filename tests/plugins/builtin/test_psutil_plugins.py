"""The four psutil built-ins, run against the real host they are tested on."""

from __future__ import annotations

import ast
import asyncio
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from pydantic import BaseModel, ValidationError
from tests.support.plugin_checks import collect_checked

import unity_catalogue as builtin
from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.disk_monitor import DiskMonitorPlugin
from unity_catalogue.network_monitor import NetworkMonitorPlugin
from unity_catalogue.process_monitor import ProcessMonitorPlugin
from unity_catalogue.system_info import SystemInfoPlugin
from unity_sdk import (
    HealthState,
    MetricKind,
    PluginBase,
)

EXPECTED = [
    (SystemInfoPlugin, "system-info", "system", 30),
    (ProcessMonitorPlugin, "process-monitor", "system", 60),
    (DiskMonitorPlugin, "disk-monitor", "storage", 60),
    (NetworkMonitorPlugin, "network-monitor", "network", 30),
]


P = TypeVar("P", bound=PluginBase)


def make(cls: type[P], **config: Any) -> P:
    """An instance of ``cls`` with ``config`` validated and defaults filled in, as the hub does."""
    schema = cls().get_metadata().config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    return cls(schema.model_validate(config).model_dump())


PSUTIL_PLUGINS: list[type[PluginBase]] = [cls for cls, *_ in EXPECTED]

# Every optional section switched on, so the coverage check sees every shape.
FULL_CONFIGS: dict[type[PluginBase], dict[str, Any]] = {
    SystemInfoPlugin: {"per_cpu": True},
    ProcessMonitorPlugin: {"watch": [psutil.Process().name(), "no-such-process"]},
    DiskMonitorPlugin: {"per_disk": True},
    NetworkMonitorPlugin: {"per_nic": True, "exclude_interfaces": []},
}


def test_builtin_list_is_explicit_and_ordered() -> None:
    assert BUILTIN_PLUGINS[: len(PSUTIL_PLUGINS)] == PSUTIL_PLUGINS
    assert builtin.__all__ == ["BUILTIN_PLUGINS"]


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_builtins_use_only_the_public_sdk() -> None:
    for path in Path(builtin.__file__).parent.glob("*.py"):
        if path.name == "__init__.py":
            continue
        private = {
            module
            for module in imported_modules(path.read_text())
            if module.split(".")[0] == "unity" or module.startswith("unity_sdk._")
        }
        assert private == set(), f"{path.name} imports {private}"


@pytest.mark.parametrize(("cls", "plugin_id", "category", "interval"), EXPECTED)
def test_metadata(cls: type[PluginBase], plugin_id: str, category: str, interval: float) -> None:
    metadata = cls().get_metadata()
    assert metadata.id == plugin_id
    assert metadata.category == category
    assert metadata.default_interval == interval
    assert metadata.version == "1.0.0"
    assert metadata.author == "Unity developers"
    assert metadata.requires.packages == ["psutil"]
    assert metadata.description
    assert metadata.tags
    names = [field.name for field in metadata.metrics]
    assert len(names) == len(set(names))
    assert all(field.description for field in metadata.metrics)
    assert all(field.unit for field in metadata.metrics if field.kind is MetricKind.COUNTER)


@pytest.mark.parametrize("cls", PSUTIL_PLUGINS)
def test_config_schema_forbids_unknown_keys(cls: type[PluginBase]) -> None:
    schema = cls().get_metadata().config_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    with pytest.raises(ValidationError, match="extra"):
        schema.model_validate({"no_such_option": 1})
    for name, field in schema.model_fields.items():
        assert field.description, f"{cls.__name__}.{name} has no description"


@pytest.mark.parametrize("cls", PSUTIL_PLUGINS)
async def test_default_document_matches_declarations(cls: type[PluginBase]) -> None:
    await collect_checked(make(cls))


@pytest.mark.parametrize("cls", PSUTIL_PLUGINS)
async def test_every_option_on_is_still_declared(cls: type[PluginBase]) -> None:
    plugin = make(cls, **FULL_CONFIGS[cls])
    await collect_checked(plugin)
    await asyncio.sleep(0.05)
    await collect_checked(plugin)


async def test_system_info_reports_this_host() -> None:
    document = await collect_checked(make(SystemInfoPlugin))
    assert document["memory"]["total"] == psutil.virtual_memory().total
    assert 0 <= document["memory"]["percent"] <= 100
    assert 0 <= document["cpu"]["percent"] <= 100
    assert "per_cpu" not in document["cpu"]
    assert document["cpu"]["count"]["logical"] == psutil.cpu_count()
    assert document["uptime"] > 0
    assert document["boot_time"] == psutil.boot_time()
    assert document["hostname"] == socket.gethostname()
    assert document["platform"]["python_version"] == platform.python_version()
    assert document["platform"]["os"] == platform.system()


async def test_system_info_per_cpu() -> None:
    document = await collect_checked(make(SystemInfoPlugin, per_cpu=True))
    per_cpu = document["cpu"]["per_cpu"]
    assert len(per_cpu) == psutil.cpu_count()
    assert all(0 <= percent <= 100 for percent in per_cpu)


async def test_process_monitor_counts_and_top_n() -> None:
    document = await collect_checked(make(ProcessMonitorPlugin, top_n=3))
    assert document["total"] >= 3
    assert sum(document["status"].values()) == document["total"]
    assert document["threads"] >= document["total"] - document["status"]["zombie"]
    assert len(document["top_cpu"]) == 3
    assert len(document["top_memory"]) == 3
    rss = [entry["memory_rss"] for entry in document["top_memory"]]
    assert rss == sorted(rss, reverse=True)
    assert document["watched"] == {}


async def test_process_monitor_measures_cpu_from_the_second_run() -> None:
    plugin = make(ProcessMonitorPlugin, top_n=50)
    await plugin.collect_data()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    document = await collect_checked(plugin)
    ours = [entry for entry in document["top_cpu"] if entry["pid"] == os.getpid()]
    assert ours, "the busy test process is not among the top 50 CPU users"
    assert ours[0]["cpu_percent"] > 0


async def test_process_monitor_watches_names() -> None:
    own_name = psutil.Process().name()
    plugin = make(ProcessMonitorPlugin, watch=[own_name, "no-such-process-name"])
    document = await collect_checked(plugin)
    assert document["watched"][own_name]["count"] >= 1
    assert document["watched"][own_name]["running"] is True
    assert document["watched"]["no-such-process-name"] == {"count": 0, "running": False}


@pytest.mark.parametrize("config", [{"top_n": 0}, {"top_n": 51}, {"watch": [""]}])
def test_process_monitor_rejects_bad_config(config: dict[str, Any]) -> None:
    schema = ProcessMonitorPlugin().get_metadata().config_schema
    assert isinstance(schema, type)
    with pytest.raises(ValidationError):
        schema.model_validate(config)


async def test_disk_monitor_reports_root() -> None:
    document = await collect_checked(make(DiskMonitorPlugin))
    root = document["partitions"]["/"]
    assert 0 <= root["percent"] <= 100
    assert root["total"] == psutil.disk_usage("/").total
    excluded = set(make(DiskMonitorPlugin).config.exclude_fstypes)
    assert not {p["fstype"] for p in document["partitions"].values()} & excluded
    assert document["max_used_percent"] == max(
        p["percent"] for p in document["partitions"].values()
    )
    assert "disks" not in document
    if psutil.disk_io_counters() is not None:
        assert document["io"]["read"]["bytes"] >= 0
        assert document["io"]["write"]["count"] >= 0


async def test_disk_monitor_include_and_per_disk() -> None:
    document = await collect_checked(
        make(DiskMonitorPlugin, include_mountpoints=["/"], per_disk=True)
    )
    assert list(document["partitions"]) == ["/"]
    assert set(document["disks"]) == set(psutil.disk_io_counters(perdisk=True))


async def test_disk_monitor_health_follows_warn_percent() -> None:
    root_percent = psutil.disk_usage("/").percent
    calm = make(DiskMonitorPlugin, include_mountpoints=["/"], warn_percent=100)
    assert (await calm.health_check()).status is HealthState.HEALTHY
    if root_percent > 0:
        alarmed = make(DiskMonitorPlugin, include_mountpoints=["/"], warn_percent=root_percent / 2)
        health = await alarmed.health_check()
        assert health.status is HealthState.DEGRADED
        assert health.details["partitions"] == {"/": root_percent}


@pytest.mark.parametrize(
    "config", [{"warn_percent": 0}, {"warn_percent": 101}, {"per_disk": "maybe"}]
)
def test_disk_monitor_rejects_bad_config(config: dict[str, Any]) -> None:
    schema = DiskMonitorPlugin().get_metadata().config_schema
    assert isinstance(schema, type)
    with pytest.raises(ValidationError):
        schema.model_validate(config)


async def test_network_monitor_rates_from_the_second_run() -> None:
    plugin = make(NetworkMonitorPlugin)
    first = await collect_checked(plugin)
    assert "rates" not in first
    await asyncio.sleep(0.05)
    second = await collect_checked(plugin)
    assert set(second["rates"]) == {"bytes_sent", "bytes_recv"}
    assert all(rate >= 0 for rate in second["rates"].values())
    # Counters only grow, so what the plugin saw cannot exceed what psutil sees now.
    assert second["totals"]["bytes_recv"] <= psutil.net_io_counters().bytes_recv
    assert second["totals"]["bytes_recv"] >= first["totals"]["bytes_recv"]


async def test_network_monitor_per_nic_honours_excludes() -> None:
    plugin = make(NetworkMonitorPlugin, per_nic=True)
    first = await collect_checked(plugin)
    nics = set(psutil.net_io_counters(pernic=True)) - {"lo"}
    assert set(first["nics"]) == nics
    assert all("rates" not in nic for nic in first["nics"].values())
    second = await collect_checked(plugin)
    stats = psutil.net_if_stats()
    for name, nic in second["nics"].items():
        assert nic["rates"]["bytes_recv"] >= 0
        if name in stats:
            assert nic["isup"] is stats[name].isup
    patterned = await collect_checked(
        make(NetworkMonitorPlugin, per_nic=True, exclude_interfaces=["*"])
    )
    assert patterned["nics"] == {}
    assert set(patterned["totals"].values()) == {0}


async def test_network_monitor_connections_when_permitted() -> None:
    document = await collect_checked(make(NetworkMonitorPlugin))
    try:
        expected = len(psutil.net_connections(kind="inet"))
    except psutil.AccessDenied:
        assert "connections" not in document
    else:
        # Sockets open and close between the two listings; the order of magnitude must hold.
        assert abs(sum(document["connections"].values()) - expected) <= max(5, expected // 2)
