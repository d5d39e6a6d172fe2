"""The smartctl plugin: the real smartctl here (no SMART devices in a VM) and recorded JSON."""

from __future__ import annotations

import os

import pytest
from test_hardware_common import (
    FakeRunner,
    Reply,
    collect_checked,
    health,
    make,
    recorded,
    require_tool,
)

from unity_catalogue.smartctl import SmartctlPlugin
from unity_sdk import CollectionError, DependencyMissingError, HealthState, LocalRunner

ID = "smartctl"
SCAN = ("smartctl", "--scan", "-j")


def query(path: str, kind: str | None = "sat", standby: bool = True) -> tuple[str, ...]:
    argv = ["smartctl", "-a", "-j", *(["-n", "standby"] if standby else [])]
    return (*argv, *(["-d", kind] if kind else []), path)


def answer(name: str) -> Reply:
    reply = recorded(ID, name)
    # smartctl's process exit status is the one recorded inside its JSON.
    status = int(reply.stdout.split('"exit_status": ')[1].split()[0].rstrip(","))
    return Reply(reply.stdout, "", status)


def server(sdb: str, nvme: str = "nvme0-nvme.json", **config: object) -> SmartctlPlugin:
    runner = FakeRunner(
        {
            SCAN: recorded(ID, "scan.json"),
            query("/dev/sda"): answer("sda-ata-ssd.json"),
            query("/dev/sdb"): answer(sdb),
            query("/dev/nvme0", "nvme"): answer(nvme),
        }
    )
    return make(SmartctlPlugin, config, runner)


async def test_real_smartctl_scan() -> None:
    require_tool("smartctl")
    plugin = make(SmartctlPlugin, runner=LocalRunner())
    scanned = await LocalRunner().run(SCAN, timeout=30)
    assert scanned.exit_status == 0
    document = await collect_checked(plugin)
    if '"devices"' not in scanned.stdout:
        # A VM's virtio disks have no SMART: nothing to examine, and health says so.
        assert document == {
            "devices": {},
            "device_count": 0,
            "standby_count": 0,
            "problem_count": 0,
        }
        # Nothing to monitor: not applicable, never unhealthy.
        for status in (await health(plugin), plugin.assess(document)):
            assert status.status is HealthState.NOT_APPLICABLE
            assert status.message == "no SMART disks on this host"
    else:
        assert document["device_count"] > 0


async def test_real_smartctl_on_a_disk_without_smart() -> None:
    require_tool("smartctl")
    disks = [f"/dev/{name}" for name in ("vda", "xvda") if os.path.exists(f"/dev/{name}")]
    if not disks or os.geteuid() != 0:
        pytest.skip("needs root and a virtual disk (/dev/vda or /dev/xvda)")
    plugin = make(SmartctlPlugin, {"devices": disks[:1]}, LocalRunner())
    document = await collect_checked(plugin)
    device = document["devices"][disks[0].rsplit("/", 1)[1]]
    assert device["state"] == "error"
    assert "Unable to detect device type" in device["error"]
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert "Unable to detect device type" in status.message


async def test_healthy_ssd_hdd_and_nvme() -> None:
    plugin = server("sdb-ata-hdd-reallocated.json", reallocated_warn=100)
    document = await collect_checked(plugin)
    assert document["device_count"] == 3
    assert document["problem_count"] == 1  # sdb's pending sectors
    sda = document["devices"]["sda"]
    assert sda == {
        "model": "Samsung SSD 870 EVO 1TB",
        "serial": "S626NF0R312345A",
        "protocol": "ATA",
        "state": "active",
        "passed": 1,
        "temperature": 34,
        "power_on_hours": 12873,
        "power_cycles": 311,
        "capacity": 1000204886016,
        "failing_attributes": 0,
        "failing": [],
        "reallocated_sectors": 0,
        "crc_errors": 0,
    }
    nvme = document["devices"]["nvme0"]
    assert nvme["protocol"] == "NVMe"
    assert nvme["percentage_used"] == 3
    assert nvme["available_spare"] == 100
    assert nvme["media_errors"] == 0
    assert nvme["critical_warning"] == 0
    assert "reallocated_sectors" not in nvme
    sdb = document["devices"]["sdb"]
    assert sdb["reallocated_sectors"] == 16
    assert sdb["pending_sectors"] == 2
    assert sdb["offline_uncorrectable"] == 0
    assert sdb["passed"] == 1
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == "sdb: 2 pending sectors"


async def test_reallocated_sectors_are_degraded_by_default() -> None:
    plugin = server("sdb-ata-hdd-reallocated.json")
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert "sdb: 16 reallocated sectors, 2 pending sectors" in status.message


async def test_failing_hdd_and_worn_nvme() -> None:
    plugin = server("sdc-ata-hdd-failing.json", "nvme0-nvme-failing.json")
    plugin.runner.replies[query("/dev/sdb")] = answer("sdc-ata-hdd-failing.json")  # type: ignore[attr-defined]
    document = await collect_checked(plugin)
    sdb = document["devices"]["sdb"]
    assert sdb["passed"] == 0
    assert sdb["failing"] == ["Reallocated_Sector_Ct"]
    assert sdb["reallocated_sectors"] == 1928
    nvme = document["devices"]["nvme0"]
    assert nvme["passed"] == 0
    assert nvme["percentage_used"] == 117
    assert nvme["media_errors"] == 31
    assert document["problem_count"] == 2
    status = await health(plugin)
    # Failing SMART is unhealthy: the disk says it is about to die.
    assert status.status is HealthState.UNHEALTHY
    assert status.details["failing"] == ["nvme0", "sdb"]
    assert "sdb: SMART overall health FAILED, failing attributes Reallocated_Sector_Ct" in (
        status.message
    )
    assert "nvme0: SMART overall health FAILED, NVMe critical warning 0x04" in status.message


async def test_sleeping_disk_is_not_woken() -> None:
    plugin = server("sdb-standby.json")
    document = await collect_checked(plugin)
    assert document["devices"]["sdb"]["state"] == "standby"
    assert "passed" not in document["devices"]["sdb"]
    assert document["standby_count"] == 1
    assert (await health(plugin)).status is HealthState.HEALTHY


async def test_configured_devices_skip_the_scan() -> None:
    runner = FakeRunner({query("/dev/sda", None, standby=False): answer("sda-ata-ssd.json")})
    plugin = make(SmartctlPlugin, {"devices": ["/dev/sda"], "skip_standby": False}, runner)
    document = await collect_checked(plugin)
    assert list(document["devices"]) == ["sda"]
    assert runner.calls == [query("/dev/sda", None, standby=False)]


async def test_no_devices() -> None:
    plugin = make(SmartctlPlugin, runner=FakeRunner({SCAN: recorded(ID, "scan-none.json")}))
    document = await collect_checked(plugin)
    assert document["device_count"] == 0
    assert (await health(plugin)).status is HealthState.NOT_APPLICABLE
    assert plugin.assess(document).status is HealthState.NOT_APPLICABLE


async def test_permission_denied() -> None:
    runner = FakeRunner(
        {("smartctl", "-a", "-j", "-n", "standby", "/dev/vda"): answer("permission-denied.json")}
    )
    plugin = make(SmartctlPlugin, {"devices": ["/dev/vda"]}, runner)
    with pytest.raises(DependencyMissingError, match=r"Permission denied.*needs root"):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY


async def test_tool_missing_and_garbage() -> None:
    plugin = make(SmartctlPlugin, runner=FakeRunner({}, missing=["smartctl"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await plugin.collect_data()
    garbled = make(SmartctlPlugin, runner=FakeRunner({SCAN: Reply("/dev/sda -d sat # ...")}))
    with pytest.raises(CollectionError, match="invalid JSON"):
        await garbled.collect_data()
