"""``assess(document)`` of the hardware plugins: health judged from each run's document.

Every document here comes from the plugin's own ``collect_data``: against a
real NUT ``upsd`` with the dummy-ups driver, or against the recorded output
of the real tools (``fixtures/<plugin-id>/``) for hardware this host lacks.
``health_check`` must say exactly what ``assess`` says about the same state.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from typing import Any

import pytest
import test_hardware_upsc
from test_hardware_common import (
    FIXTURES,
    FakeRunner,
    Reply,
    collect_checked,
    failing,
    health,
    make,
    nothing_collected,
    recorded,
)
from test_hardware_ipmitool import ABSENT, ACPI_BMC, SENSORS, SMBIOS_BMC, board
from test_hardware_lm_sensors import plugin_for as sensors_for
from test_hardware_mdadm import MDSTAT, detail
from test_hardware_nvidia import APPS, GPUS
from test_hardware_smartctl import SCAN, server
from test_hardware_upsc import Nut
from test_hardware_upsc import plugin_for as ups_for
from test_hardware_zpool_status import LIST, host

from unity_catalogue.gpu import GpuPlugin
from unity_catalogue.ipmitool import IpmitoolPlugin
from unity_catalogue.lm_sensors import LmSensorsPlugin
from unity_catalogue.mdadm import MdadmPlugin
from unity_catalogue.nvidia_smi import NvidiaSmiPlugin
from unity_catalogue.smartctl import SmartctlPlugin
from unity_catalogue.upsc import UpscPlugin
from unity_catalogue.zpool_status import ZpoolStatusPlugin
from unity_sdk import HealthState, HealthStatus, LocalRunner, PluginBase

# The real upsd of the upsc tests, a fixture of this module too.
nut = test_hardware_upsc.nut

HEALTHY, DEGRADED, UNHEALTHY = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY


def _mdadm(mdstat: str, **details: str) -> MdadmPlugin:
    replies = {MDSTAT: recorded("mdadm", mdstat)}
    replies |= {detail(name): recorded("mdadm", file) for name, file in details.items()}
    return make(MdadmPlugin, {"detail": bool(details)}, FakeRunner(replies))


async def _judged(plugin: PluginBase) -> HealthStatus:
    """``assess`` of a freshly collected document; ``health_check`` must agree."""
    document = await collect_checked(plugin)
    status = plugin.assess(document)
    assert status is not None
    assert await health(plugin) == status
    return status


# (plugin, expected state, expected message) -- one realistic document each.
RECORDED: dict[str, tuple[Callable[[], PluginBase], HealthState, str]] = {
    "ups-on-line": (
        lambda: ups_for(recorded("upsc", "apc-back-ups-online.txt")),
        HEALTHY,
        "on line, 100 %, 47 min left",
    ),
    "ups-on-battery": (
        lambda: ups_for(recorded("upsc", "eaton-5e-on-battery.txt")),
        DEGRADED,
        "on battery, 64 %, 7 min left",
    ),
    "ups-low-battery": (
        lambda: ups_for(recorded("upsc", "eaton-5e-low-battery.txt")),
        UNHEALTHY,
        "on battery, 9 %, 63 s left: low battery, runtime below 5 min, charge below 20 %",
    ),
    "md-raid1-clean": (
        lambda: _mdadm("mdstat-raid1.txt", md0="detail-md0-raid1.txt"),
        HEALTHY,
        "1 array(s) fine: md0 raid1",
    ),
    "md-raid5-degraded": (
        lambda: _mdadm(
            "mdstat-raid5-recovering.txt",
            md127="detail-md127-raid5.txt",
            md0="detail-md0-resync-delayed.txt",
        ),
        DEGRADED,
        "md127 (raid5): 3/4 devices active, failed: sdd1, clean, degraded, recovering, "
        "recovery 27%",
    ),
    "md-inactive": (lambda: _mdadm("mdstat-inactive.txt"), UNHEALTHY, "md127 (inactive)"),
    "zpool-healthy": (
        lambda: host("healthy"),
        HEALTHY,
        "2 pool(s) online: rpool 17% full, tank 57% full",
    ),
    "zpool-degraded-and-unavailable": (
        lambda: host("degraded"),
        UNHEALTHY,
        "backup: UNAVAIL (usb-WD_Elements_25A3_575834314131-0:0 UNAVAIL); tank: DEGRADED "
        "(raidz2-0 DEGRADED, spare-1 DEGRADED, ata-WDC_WD40EFRX-68N32N0_WD-WCC7K2 FAULTED); "
        "tank: 413 vdev I/O or checksum errors; tank: 85% full",
    ),
    "smart-pass": (
        lambda: server("sdb-standby.json"),
        HEALTHY,
        "3 disk(s) pass SMART (1 asleep, not woken)",
    ),
    "smart-reallocated": (
        lambda: server("sdb-ata-hdd-reallocated.json"),
        DEGRADED,
        "sdb: 16 reallocated sectors, 2 pending sectors",
    ),
    "smart-failing": (
        lambda: server("sdc-ata-hdd-failing.json", "nvme0-nvme-failing.json"),
        UNHEALTHY,
        "sdb: SMART overall health FAILED, failing attributes Reallocated_Sector_Ct, "
        "1928 reallocated sectors, 24 pending sectors; nvme0: SMART overall health FAILED, "
        "NVMe critical warning 0x04, 31 NVMe media errors",
    ),
    "sensors-above-max": (
        lambda: sensors_for(recorded("lm-sensors", "overheating.json")),
        DEGRADED,
        "coretemp-isa-0000/Package id 0 91 °C above max 80; "
        "coretemp-isa-0000/Core 0 89 °C above max 80; nct6775-isa-0290/fan2 0 RPM below min 300",
    ),
    "sensors-at-critical": (
        lambda: sensors_for(recorded("lm-sensors", "critical.json")),
        UNHEALTHY,
        "nvme-pci-0400/Composite 85.85 °C at or above critical 84.85",
    ),
    "ipmi-within-thresholds": (
        lambda: board("supermicro", recorded("ipmitool", "sel-empty.txt")),
        HEALTHY,
        "14 sensor(s) within thresholds",
    ),
    "ipmi-critical-fan": (
        lambda: board("dell", recorded("ipmitool", "dell-sel-elist.txt")),
        UNHEALTHY,
        "non-critical: Exhaust Temp 72 °C; critical: Fan3 240 RPM; chassis fault: cooling_fault",
    ),
}


@pytest.mark.parametrize("case", RECORDED)
async def test_recorded_documents_are_judged(case: str) -> None:
    make_plugin, state, message = RECORDED[case]
    status = await _judged(make_plugin())
    assert (status.status, status.message) == (state, message)


async def test_ups_details_carry_the_numbers() -> None:
    status = await _judged(ups_for(recorded("upsc", "eaton-5e-on-battery.txt")))
    assert status.details == {
        "ups": "ups",
        "status": "OB DISCHRG",
        "battery_charge": 64.0,
        "battery_runtime": 412.0,
        "load": 41.0,
        "runtime_low": 300.0,
        "charge_low": 20.0,
    }


async def test_thresholds_come_from_the_config() -> None:
    # The same recorded pool, judged against a lower capacity mark.
    status = await _judged(host("healthy", capacity_warn=50))
    assert (status.status, status.message) == (DEGRADED, "tank: 57% full")
    # And the same disks with a higher tolerance for reallocated sectors.
    lenient = server("sdb-ata-hdd-reallocated.json", reallocated_warn=100)
    status = await _judged(lenient)
    assert (status.status, status.message) == (DEGRADED, "sdb: 2 pending sectors")


NO_DEVICES = Reply(recorded("nvidia-smi", "no-devices.stdout").stdout, "", 6)
NO_SENSORS = Reply(
    recorded("lm-sensors", "no-sensors.stdout").stdout,
    recorded("lm-sensors", "no-sensors.stderr").stdout,
    1,
)

# Hosts with nothing to monitor (a VM): the tools' real answers there.
NOTHING: dict[str, tuple[type[PluginBase], dict[tuple[str, ...], Reply], str]] = {
    "mdadm": (MdadmPlugin, {MDSTAT: recorded("mdadm", "mdstat-none.txt")}, "no md RAID arrays"),
    "mdadm-no-md-driver": (
        MdadmPlugin,
        {MDSTAT: failing("cat: /proc/mdstat: No such file or directory")},
        "no md RAID arrays",
    ),
    "smartctl": (SmartctlPlugin, {SCAN: recorded("smartctl", "scan-none.json")}, "no SMART disks"),
    "zpool-status": (
        ZpoolStatusPlugin,
        {LIST: recorded("zpool-status", "list-none.txt")},
        "no ZFS pools",
    ),
    "lm-sensors": (LmSensorsPlugin, {("sensors", "-j"): NO_SENSORS}, "no hardware sensors"),
    "ipmitool": (
        IpmitoolPlugin,
        {
            SENSORS: failing(recorded("ipmitool", "no-device.stderr").stdout),
            SMBIOS_BMC: ABSENT,
            ACPI_BMC: ABSENT,
        },
        "no BMC",
    ),
    "nvidia-smi": (NvidiaSmiPlugin, {GPUS: NO_DEVICES, APPS: NO_DEVICES}, "no NVIDIA GPU"),
    "gpu": (GpuPlugin, {GPUS: NO_DEVICES}, "no NVIDIA GPU"),
}


@pytest.mark.parametrize("case", NOTHING)
async def test_nothing_to_monitor_is_not_applicable(case: str) -> None:
    cls, replies, message = NOTHING[case]
    plugin = make(cls, runner=FakeRunner(replies))
    # A successful run (never a failed one), whose document says there is nothing here.
    document = await nothing_collected(plugin)
    status = plugin.assess(document)
    assert status is not None
    assert status.status is HealthState.NOT_APPLICABLE
    assert status.message.startswith(message)
    assert await health(plugin) == status


@pytest.mark.parametrize("cls", [MdadmPlugin, SmartctlPlugin, ZpoolStatusPlugin, LmSensorsPlugin])
async def test_a_missing_tool_stays_unhealthy_and_says_which(cls: type[PluginBase]) -> None:
    tool = cls().get_metadata().requires.commands[0]
    plugin = make(cls, runner=FakeRunner({}, missing=[tool]))
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert status.message == f"{tool} is not installed on the target"


# -- the real upsd ------------------------------------------------------------------


async def _until(
    plugin: UpscPlugin, wanted: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Collect until the UPS document shows ``what`` (dummy-ups re-reads its file every 2 s)."""
    deadline = time.monotonic() + 20
    while True:
        document = await collect_checked(plugin)
        if wanted(document["ups"]["apc"]):
            return document
        assert time.monotonic() < deadline, f"upsd never reported {what}"
        await asyncio.sleep(0.5)


async def test_real_ups_going_on_battery_turns_assess_degraded(nut: Nut) -> None:
    plugin = make(UpscPlugin, {"ups": "apc", "host": "127.0.0.1", "port": nut.port}, LocalRunner())
    document = await _until(plugin, lambda ups: ups["status"] == "OL", "on line")
    status = plugin.assess(document)
    assert (status.status, status.message) == (HEALTHY, "on line, 100 %, 47 min left")

    # Mains fails: the driver now reports what the Eaton reported on battery.
    shutil.copy(FIXTURES / "upsc" / "eaton-5e-on-battery.txt", nut.device_file)
    document = await _until(plugin, lambda ups: ups["on_battery"] == 1, "on battery")
    status = plugin.assess(document)
    assert (status.status, status.message) == (DEGRADED, "on battery, 64 %, 7 min left")
    assert status.details["battery_runtime"] == 412.0
    assert await health(plugin) == plugin.assess(await collect_checked(plugin))

    # The UPS's own low mark above what is left: unhealthy before it raises LB.
    on_battery = (FIXTURES / "upsc" / "eaton-5e-on-battery.txt").read_text()
    nut.device_file.write_text(f"{on_battery}battery.runtime.low: 600\n")
    document = await _until(
        plugin, lambda ups: ups.get("battery_runtime_low") == 600.0, "the low mark"
    )
    status = plugin.assess(document)
    assert (status.status, status.message) == (
        UNHEALTHY,
        "on battery, 64 %, 7 min left: runtime below 10 min",
    )

    # Mains is back.
    shutil.copy(FIXTURES / "upsc" / "apc-back-ups-online.txt", nut.device_file)
    document = await _until(plugin, lambda ups: ups["status"] == "OL", "on line again")
    assert plugin.assess(document).status is HEALTHY
