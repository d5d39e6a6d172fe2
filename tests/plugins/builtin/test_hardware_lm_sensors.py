"""The lm-sensors plugin: the real `sensors` binary here, and recorded multi-chip output."""

from __future__ import annotations

import pytest
from test_hardware_common import (
    NOT_FOUND,
    FakeRunner,
    Reply,
    collect_checked,
    health,
    make,
    nothing_collected,
    recorded,
    require_tool,
)

from unity_catalogue.lm_sensors import LmSensorsPlugin
from unity_sdk import DependencyMissingError, HealthState, LocalRunner

ID = "lm-sensors"
SENSORS = ("sensors", "-j")


def plugin_for(reply: Reply, **config: object) -> LmSensorsPlugin:
    return make(LmSensorsPlugin, config, FakeRunner({SENSORS: reply}))


async def test_real_sensors_binary() -> None:
    require_tool("sensors")
    runner = LocalRunner()
    plugin = make(LmSensorsPlugin, runner=runner)
    probe = await runner.run(SENSORS, timeout=15)
    if "No sensors found" in probe.stderr:
        # A VM or container has no hwmon chips: sensors says so and exits 1.
        assert probe.exit_status == 1
        document = await nothing_collected(plugin)
        assert document["chips"] == {}
        # Nothing to monitor: not applicable, never unhealthy.
        for status in (await health(plugin), plugin.assess(document)):
            assert status.status is HealthState.NOT_APPLICABLE
            assert "sensors-detect" in status.message
    else:
        document = await collect_checked(plugin)
        assert document["temperature_count"] > 0
        assert document["max_temperature"] > -50


async def test_no_sensors_found_is_nothing_to_monitor() -> None:
    reply = recorded(ID, "no-sensors.stdout", exit_status=1)
    reply = Reply(reply.stdout, recorded(ID, "no-sensors.stderr").stdout, 1)
    plugin = plugin_for(reply)
    document = await nothing_collected(plugin)
    assert document == {
        "chips": {},
        "temperature_count": 0,
        "fan_count": 0,
        "voltage_count": 0,
        "alarm_count": 0,
        "alarms": [],
    }
    status = await health(plugin)
    assert status.status is HealthState.NOT_APPLICABLE
    assert "sensors-detect" in status.message
    assert plugin.assess(document) == status


async def test_multi_chip_desktop() -> None:
    plugin = plugin_for(recorded(ID, "multi-chip.json"))
    document = await collect_checked(plugin)
    assert set(document["chips"]) == {
        "coretemp-isa-0000",
        "nvme-pci-0100",
        "acpitz-acpi-0",
        "nct6775-isa-0290",
    }
    coretemp = document["chips"]["coretemp-isa-0000"]
    assert coretemp["adapter"] == "ISA adapter"
    assert coretemp["temperatures"]["Package id 0"] == {"input": 47.0, "max": 80.0, "crit": 100.0}
    assert coretemp["fans"] == {}
    assert coretemp["voltages"] == {}
    nvme = document["chips"]["nvme-pci-0100"]["temperatures"]
    assert nvme["Composite"] == {"input": 38.85, "max": 81.85, "crit": 84.85}
    nct = document["chips"]["nct6775-isa-0290"]
    # A limit of 0 is "not set" on these chips and is left out.
    assert nct["temperatures"]["SYSTIN"] == {"input": 33.0}
    assert nct["voltages"]["in1"] == {"input": 1.008}
    assert nct["voltages"]["AVCC"] == {"input": 3.36, "min": 2.976, "max": 3.632}
    assert nct["fans"]["fan2"] == {"input": 1171.0, "min": 300.0}
    assert nct["fans"]["fan1"] == {"input": 0.0}
    assert "intrusion0" not in nct["temperatures"]
    # Unconnected AUXTIN0 reads 115 °C: with no limit it raises no alarm, but is the max.
    assert document["max_temperature"] == 115.0
    assert document["temperature_count"] == 5 + 3 + 1 + 4
    assert document["fan_count"] == 3
    assert document["voltage_count"] == 6
    assert document["alarm_count"] == 0
    assert (await health(plugin)).status is HealthState.HEALTHY


async def test_ignore_patterns_drop_unconnected_inputs() -> None:
    plugin = plugin_for(recorded(ID, "multi-chip.json"), ignore=["nct6775-*/AUXTIN*", "*/fan1"])
    document = await collect_checked(plugin)
    nct = document["chips"]["nct6775-isa-0290"]
    assert "AUXTIN0" not in nct["temperatures"]
    assert "fan1" not in nct["fans"]
    assert document["max_temperature"] == 47.0


async def test_above_max_and_stalled_fan_are_degraded() -> None:
    plugin = plugin_for(recorded(ID, "overheating.json"))
    document = await collect_checked(plugin)
    assert document["alarm_count"] == 3
    assert document["max_temperature"] == 91.0
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert "coretemp-isa-0000/Package id 0 91 °C above max 80" in status.message
    assert "nct6775-isa-0290/fan2 0 RPM below min 300" in status.message
    assert "Core 1" not in status.message


async def test_critical_temperature_is_unhealthy() -> None:
    plugin = plugin_for(recorded(ID, "critical.json"))
    document = await collect_checked(plugin)
    assert document["chips"]["k10temp-pci-00c3"]["temperatures"]["Tctl"] == {"input": 95.5}
    assert document["alarms"] == ["nvme-pci-0400/Composite 85.85 °C at or above critical 84.85"]
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert "critical" in status.message


async def test_tool_missing() -> None:
    plugin = plugin_for(NOT_FOUND)
    plugin.runner = FakeRunner({}, missing=["sensors"])
    with pytest.raises(DependencyMissingError, match="not installed"):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY


async def test_garbage_output_is_a_collection_error() -> None:
    plugin = plugin_for(Reply("coretemp-isa-0000\nAdapter: ISA adapter\n"))
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert "invalid JSON" in status.message


async def test_fans_without_temperatures_are_reported_as_missing_sensors() -> None:
    plugin = plugin_for(Reply('{"fan-chip-0":{"Adapter":"ISA adapter","fan1":{"fan1_input":900}}}'))
    with pytest.raises(DependencyMissingError, match="no temperature sensors"):
        await plugin.collect_data()
