"""The nvidia-smi and gpu plugins (and their shared CSV module) on recorded nvidia-smi output."""

from __future__ import annotations

import pytest
from test_hardware_common import (
    FakeRunner,
    Reply,
    collect_checked,
    failing,
    health,
    make,
    recorded,
)

from unity_catalogue.gpu import GpuPlugin
from unity_catalogue.nvidia_smi import NvidiaSmiPlugin
from unity_sdk import DependencyMissingError, HealthState, PluginBase

ID = "nvidia-smi"
FORMAT = "--format=csv,noheader,nounits"
GPUS = (
    "nvidia-smi",
    "--query-gpu=index,name,uuid,utilization.gpu,utilization.memory,memory.total,"
    "memory.used,temperature.gpu,power.draw,power.limit,fan.speed",
    FORMAT,
)
APPS = ("nvidia-smi", "--query-compute-apps=pid,process_name,used_memory,gpu_uuid", FORMAT)


def runner(gpus: str, apps: str = "apps-none.csv") -> FakeRunner:
    return FakeRunner({GPUS: recorded(ID, gpus), APPS: recorded(ID, apps)})


async def test_nvidia_smi_one_gpu() -> None:
    plugin = make(NvidiaSmiPlugin, runner=runner("gpus-1-rtx3090.csv"))
    document = await collect_checked(plugin)
    assert document == {
        "gpus": {
            "0": {
                "name": "NVIDIA GeForce RTX 3090",
                "uuid": "GPU-5f2a9c1e-7b3d-4e8a-9c61-2d8f0b7a4e13",
                "utilization": 37.0,
                "memory_utilization": 12.0,
                "memory_total": 24576.0,
                "memory_used": 9822.0,
                "temperature": 61.0,
                "power_draw": 182.34,
                "power_limit": 350.0,
                "fan_speed": 45.0,
            }
        },
        "gpu_count": 1,
        "processes": {},
        "process_count": 0,
    }
    status = await health(plugin)
    assert status.status is HealthState.HEALTHY
    assert status.message == "NVIDIA GeForce RTX 3090"


async def test_nvidia_smi_two_gpus_and_their_processes() -> None:
    plugin = make(NvidiaSmiPlugin, runner=runner("gpus-2-rtx3090-p40.csv", "apps-2-gpus.csv"))
    document = await collect_checked(plugin)
    assert document["gpu_count"] == 2
    p40 = document["gpus"]["1"]
    assert p40["name"] == "Tesla P40"
    assert "fan_speed" not in p40
    assert document["processes"] == {
        "41873": {"name": "/usr/bin/python3", "memory_used": 9216.0, "gpu": "0"},
        "2214": {"name": "/usr/local/bin/ollama", "memory_used": 14080.0, "gpu": "0"},
        "2214@1": {"name": "/usr/local/bin/ollama", "memory_used": 21376.0, "gpu": "1"},
    }
    assert document["process_count"] == 3


async def test_nvidia_smi_without_processes() -> None:
    fake = FakeRunner({GPUS: recorded(ID, "gpus-1-rtx3090.csv")})
    document = await collect_checked(make(NvidiaSmiPlugin, {"processes": False}, fake))
    assert "processes" not in document
    assert fake.calls == [GPUS]


async def test_not_supported_values_are_left_out() -> None:
    plugin = make(NvidiaSmiPlugin, runner=runner("gpus-laptop-not-supported.csv"))
    gpu = (await collect_checked(plugin))["gpus"]["0"]
    assert gpu == {
        "name": "NVIDIA GeForce MX150",
        "uuid": "GPU-0d93c2aa-15e7-4b6f-8d2c-7a1f3e9b6c54",
        "memory_total": 2048.0,
        "memory_used": 5.0,
        "temperature": 48.0,
    }
    view = await collect_checked(make(GpuPlugin, runner=runner("gpus-laptop-not-supported.csv")))
    assert view["gpus"]["0"]["memory_percent"] == 0.2
    assert "power_percent" not in view["gpus"]["0"]
    assert view["power_draw"] == 0


async def test_gpu_view_and_totals() -> None:
    plugin = make(GpuPlugin, runner=runner("gpus-2-rtx3090-p40.csv"))
    document = await collect_checked(plugin)
    assert document["gpus"]["0"] == {
        "name": "NVIDIA GeForce RTX 3090",
        "utilization": 98.0,
        "memory_used": 23805.0,
        "memory_total": 24576.0,
        "temperature": 79.0,
        "power_draw": 341.72,
        "power_limit": 350.0,
        "memory_free": 771.0,
        "memory_percent": 96.9,
        "power_percent": 97.6,
    }
    assert document["memory_used"] == 23805 + 21504
    assert document["memory_total"] == 2 * 24576
    assert document["power_draw"] == 529.27
    assert document["max_temperature"] == 88.0
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == "GPU 0 memory 96.9% used; GPU 1 at 88 °C"


async def test_gpu_selection_and_thresholds() -> None:
    plugin = make(
        GpuPlugin,
        {"gpus": [0], "memory_warn_percent": 99, "temperature_warn": 90},
        runner("gpus-2-rtx3090-p40.csv"),
    )
    document = await collect_checked(plugin)
    assert list(document["gpus"]) == ["0"]
    assert (await health(plugin)).status is HealthState.HEALTHY


@pytest.mark.parametrize("cls", [NvidiaSmiPlugin, GpuPlugin])
async def test_driver_not_loaded(cls: type[PluginBase]) -> None:
    reply = Reply(recorded(ID, "no-driver.stdout").stdout, "", 9)
    plugin = make(cls, runner=FakeRunner({GPUS: reply}))
    with pytest.raises(DependencyMissingError, match="couldn't communicate with the NVIDIA driver"):
        await plugin.collect_data()
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert "NVIDIA driver" in status.message


@pytest.mark.parametrize("cls", [NvidiaSmiPlugin, GpuPlugin])
async def test_no_gpus(cls: type[PluginBase]) -> None:
    reply = Reply(recorded(ID, "no-devices.stdout").stdout, "", 6)
    plugin = make(cls, runner=FakeRunner({GPUS: reply, APPS: reply}))
    document = await collect_checked(plugin)
    assert document["gpus"] == {}
    assert document["gpu_count"] == 0
    # Nothing to monitor: not applicable, never unhealthy.
    status = await health(plugin)
    assert status.status is HealthState.NOT_APPLICABLE
    assert status.message == "no NVIDIA GPU on this host"
    assert plugin.assess(document) == status


@pytest.mark.parametrize("cls", [NvidiaSmiPlugin, GpuPlugin])
async def test_command_not_found(cls: type[PluginBase]) -> None:
    plugin = make(cls, runner=FakeRunner({}, missing=["nvidia-smi"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY


async def test_insufficient_permissions() -> None:
    plugin = make(GpuPlugin, runner=FakeRunner({GPUS: failing("Insufficient Permissions", 4)}))
    with pytest.raises(DependencyMissingError, match="insufficient permissions"):
        await plugin.collect_data()
