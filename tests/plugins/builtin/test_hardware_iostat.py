"""The iostat plugin: the real sysstat iostat here, and recorded sysstat 11 and 12 reports."""

from __future__ import annotations

import time

import pytest
from test_hardware_common import (
    FakeRunner,
    collect_checked,
    failing,
    health,
    make,
    recorded,
    require_tool,
)

from unity_catalogue.iostat import IostatPlugin
from unity_sdk import CollectionError, DependencyMissingError, HealthState, LocalRunner

ID = "iostat"
IOSTAT = ("iostat", "-x", "-o", "JSON", "-d", "1", "2")


async def test_real_iostat_measures_one_interval() -> None:
    require_tool("iostat")
    plugin = make(IostatPlugin, runner=LocalRunner())
    started = time.perf_counter()
    document = await collect_checked(plugin)
    # Two reports one second apart: the plugin waits for the measured one.
    assert time.perf_counter() - started >= 0.9
    assert not [name for name in document["devices"] if name.startswith(("loop", "ram"))]
    for device in document["devices"].values():
        assert device["reads"] >= 0
        assert 0 <= device["util"] <= 100
        assert "await" in device
    assert document["device_count"] == len(document["devices"])
    assert (await health(plugin)).status in (HealthState.HEALTHY, HealthState.DEGRADED)


async def test_recorded_sysstat_12() -> None:
    plugin = make(IostatPlugin, runner=FakeRunner({IOSTAT: recorded(ID, "vm-sysstat-12.6.json")}))
    document = await collect_checked(plugin)
    assert document["device_count"] >= 1
    for device in document["devices"].values():
        # sysstat 12 prints no await: it is derived from r_await and w_await.
        low, high = sorted((device["read_await"], device["write_await"]))
        assert low <= device["await"] <= high or device["reads"] + device["writes"] == 0
        assert "queue_size" in device


async def test_recorded_busy_nas_on_sysstat_11() -> None:
    plugin = make(IostatPlugin, runner=FakeRunner({IOSTAT: recorded(ID, "nas-sysstat-11.6.json")}))
    document = await collect_checked(plugin)
    assert set(document["devices"]) == {"sda", "sdb", "nvme0n1", "md0"}
    assert document["devices"]["sda"] == {
        "reads": 212.0,
        "writes": 88.0,
        "read_kb": 27136.0,
        "write_kb": 11520.0,
        "read_await": 31.52,
        "write_await": 13.95,
        "await": 26.37,
        "queue_size": 7.91,
        "util": 99.6,
    }
    assert document["max_util"] == 99.6
    assert document["total_read_kb"] == 27136 + 26752 + 64 + 53888
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == "devices busier than 95%: sda 99.6%"
    calm = make(
        IostatPlugin,
        {"util_warn": 100, "exclude": []},
        FakeRunner({IOSTAT: recorded(ID, "nas-sysstat-11.6.json")}),
    )
    assert "loop0" in (await collect_checked(calm))["devices"]
    assert (await health(calm)).status is HealthState.HEALTHY


async def test_sample_length_is_configurable() -> None:
    argv = ("iostat", "-x", "-o", "JSON", "-d", "5", "2")
    runner = FakeRunner({argv: recorded(ID, "nas-sysstat-11.6.json")})
    await collect_checked(make(IostatPlugin, {"sample_seconds": 5}, runner))
    assert runner.calls == [argv]


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("Linux 4.9.0 (old)\n\nDevice: rrqm/s wrqm/s\nsda 0.00 0.00\n", "JSON report"),
        ('{"sysstat": {"hosts": [{"statistics": []}]}}', "no report"),
    ],
)
async def test_unexpected_output(stdout: str, message: str) -> None:
    plugin = make(IostatPlugin, runner=FakeRunner({IOSTAT: failing("", 0, stdout)}))
    with pytest.raises(CollectionError, match=message):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY


async def test_old_iostat_and_missing_tool() -> None:
    old = make(IostatPlugin, runner=FakeRunner({IOSTAT: failing("Usage: iostat [ options ]")}))
    with pytest.raises(CollectionError, match="Usage"):
        await old.collect_data()
    missing = make(IostatPlugin, runner=FakeRunner({}, missing=["iostat"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await missing.collect_data()
