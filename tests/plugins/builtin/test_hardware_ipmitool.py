"""The ipmitool plugin: the real binary without a BMC, and recorded Supermicro / Dell output."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_hardware_common import (
    FakeRunner,
    Reply,
    collect_checked,
    failing,
    health,
    make,
    nothing_collected,
    recorded,
    require_tool,
)

from unity_catalogue.ipmitool import IpmitoolPlugin
from unity_sdk import CollectionError, DependencyMissingError, HealthState, LocalRunner

ID = "ipmitool"
SENSORS = ("ipmitool", "sensor", "list")
CHASSIS = ("ipmitool", "chassis", "status")
SEL = ("ipmitool", "sel", "elist")
SMBIOS_BMC = ("test", "-e", "/sys/firmware/dmi/entries/38-0")
ACPI_BMC = ("test", "-e", "/sys/firmware/acpi/tables/SPMI")
ABSENT = Reply(exit_status=1)


def board(vendor: str, sel: Reply, **config: object) -> IpmitoolPlugin:
    runner = FakeRunner(
        {
            SENSORS: recorded(ID, f"{vendor}-sensor-list.txt"),
            CHASSIS: recorded(ID, f"{vendor}-chassis-status.txt"),
            SEL: sel,
        }
    )
    return make(IpmitoolPlugin, config, runner)


async def test_real_ipmitool_without_a_bmc() -> None:
    require_tool("ipmitool")
    plugin = make(IpmitoolPlugin, runner=LocalRunner())
    probe = await LocalRunner().run(SENSORS, timeout=30)
    if "Could not open device" not in probe.stderr:
        pytest.skip("this host has an IPMI device; the recorded tests cover parsing")
    if any(Path(table).exists() for table in (SMBIOS_BMC[-1], ACPI_BMC[-1])):
        with pytest.raises(DependencyMissingError, match="ipmi_si"):
            await plugin.collect_data()
        assert (await health(plugin)).status is HealthState.UNHEALTHY
        return
    # No device and no BMC in the firmware tables (a VM): nothing to monitor.
    document = await nothing_collected(plugin)
    assert document["sensor_count"] == 0
    for status in (await health(plugin), plugin.assess(document)):
        assert status.status is HealthState.NOT_APPLICABLE
        assert "no BMC" in status.message


async def test_supermicro_healthy() -> None:
    plugin = board("supermicro", recorded(ID, "sel-empty.txt"))
    document = await collect_checked(plugin)
    assert document["temperatures"]["CPU Temp"] == {
        "value": 41.0,
        "status": "ok",
        "lower_non_recoverable": 0.0,
        "lower_critical": 0.0,
        "lower_non_critical": 0.0,
        "upper_non_critical": 90.0,
        "upper_critical": 95.0,
        "upper_non_recoverable": 95.0,
    }
    assert "DIMMB1 Temp" not in document["temperatures"]
    assert set(document["fans"]) == {"FAN1", "FAN3", "FANA"}
    assert document["voltages"]["12V"]["value"] == 12.192
    assert document["discrete"]["PS1 Status"] == {"state": "0x0100"}
    assert document["sensor_count"] == 5 + 3 + 6
    assert document["sensors_not_ok"] == 0
    assert document["chassis"]["power_on"] == 1
    assert document["chassis"]["cooling_fault"] == 0
    assert document["chassis"]["power_restore_policy"] == "always-on"
    assert document["sel"] == {"entries": 0, "critical": 0, "recent": []}
    assert (await health(plugin)).status is HealthState.HEALTHY


async def test_dell_failing_fan_is_unhealthy() -> None:
    plugin = board("dell", recorded(ID, "dell-sel-elist.txt"), recent_events=3)
    document = await collect_checked(plugin)
    assert document["fans"]["Fan3"]["status"] == "cr"
    assert document["fans"]["Fan3"]["lower_critical"] == 360.0
    assert document["temperatures"]["Temp"]["value"] == 61.0
    assert document["temperatures"]["Temp #2"]["value"] == 58.0
    assert document["power"]["Pwr Consumption"]["value"] == 168.0
    assert document["currents"]["Current 1"]["value"] == 0.8
    assert set(document["discrete"]) == {"PS Redundancy", "Status", "Status #2", "Intrusion"}
    assert document["sensors_not_ok"] == 2
    assert document["chassis"]["cooling_fault"] == 1
    assert document["chassis"]["last_power_event"] == "ac-failed"
    sel = document["sel"]
    assert sel["entries"] == 8
    # AC lost, Fan3 lower critical and fan redundancy lost; not the non-critical or ECC ones.
    assert sel["critical"] == 3
    assert [event["id"] for event in sel["recent"]] == ["6", "7", "8"]
    assert sel["recent"][2]["date"] == "Pre-Init"
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert "critical: Fan3" in status.message
    assert "non-critical: Exhaust Temp" in status.message
    assert "cooling_fault" in status.message


async def test_only_reads_the_device() -> None:
    plugin = board("supermicro", recorded(ID, "sel-empty.txt"), recent_events=0)
    await collect_checked(plugin)
    assert plugin.runner.calls == [SENSORS, CHASSIS, SEL]  # type: ignore[attr-defined]


async def test_no_ipmi_device_and_no_bmc_is_nothing_to_monitor() -> None:
    stderr = recorded(ID, "no-device.stderr").stdout
    replies = {SENSORS: failing(stderr), SMBIOS_BMC: ABSENT, ACPI_BMC: ABSENT}
    plugin = make(IpmitoolPlugin, runner=FakeRunner(replies))
    document = await nothing_collected(plugin)
    assert document["sensor_count"] == 0
    assert "chassis" not in document
    status = await health(plugin)
    assert status.status is HealthState.NOT_APPLICABLE
    assert plugin.assess(document) == status


async def test_no_ipmi_device_on_a_server_with_a_bmc_is_a_missing_dependency() -> None:
    stderr = recorded(ID, "no-device.stderr").stdout
    replies = {SENSORS: failing(stderr), SMBIOS_BMC: Reply()}
    plugin = make(IpmitoolPlugin, runner=FakeRunner(replies))
    with pytest.raises(DependencyMissingError, match="load the ipmi_si and ipmi_devintf"):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY


async def test_permission_denied() -> None:
    stderr = (
        "Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: Permission denied"
    )
    plugin = make(IpmitoolPlugin, runner=FakeRunner({SENSORS: failing(stderr)}))
    with pytest.raises(DependencyMissingError, match="permission denied"):
        await plugin.collect_data()


async def test_tool_missing_and_bmc_errors() -> None:
    plugin = make(IpmitoolPlugin, runner=FakeRunner({}, missing=["ipmitool"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await plugin.collect_data()
    busy = make(
        IpmitoolPlugin,
        runner=FakeRunner({SENSORS: failing("Get Device ID command failed: 0xc3 Timeout")}),
    )
    with pytest.raises(CollectionError, match="Timeout"):
        await busy.collect_data()
    assert (await health(busy)).status is HealthState.UNHEALTHY
