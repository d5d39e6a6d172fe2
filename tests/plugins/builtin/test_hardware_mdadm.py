"""The mdadm plugin: the real /proc/mdstat of this host, and recorded arrays."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_hardware_common import (
    FakeRunner,
    collect_checked,
    failing,
    health,
    make,
    recorded,
)

from unity_catalogue.mdadm import MdadmPlugin
from unity_sdk import DependencyMissingError, HealthState, LocalRunner

ID = "mdadm"
MDSTAT = ("cat", "/proc/mdstat")


def detail(name: str) -> tuple[str, ...]:
    return ("mdadm", "--detail", f"/dev/{name}")


async def test_real_proc_mdstat() -> None:
    plugin = make(MdadmPlugin, {"detail": False}, LocalRunner())
    document = await collect_checked(plugin)
    if not Path("/proc/mdstat").exists():
        assert document == {"arrays": {}, "array_count": 0, "degraded_count": 0}
    else:
        names = [
            line.split()[0]
            for line in Path("/proc/mdstat").read_text().splitlines()
            if line.startswith("md")
        ]
        assert sorted(document["arrays"]) == sorted(names)
    if not document["arrays"]:
        # Nothing to monitor (a VM): not applicable, never unhealthy.
        for status in (await health(plugin), plugin.assess(document)):
            assert status.status is HealthState.NOT_APPLICABLE
            assert status.message == "no md RAID arrays on this host"


async def test_healthy_raid1() -> None:
    runner = FakeRunner(
        {
            MDSTAT: recorded(ID, "mdstat-raid1.txt"),
            detail("md0"): recorded(ID, "detail-md0-raid1.txt"),
        }
    )
    plugin = make(MdadmPlugin, runner=runner)
    document = await collect_checked(plugin)
    assert document["arrays"]["md0"] == {
        "state": "active",
        "level": "raid1",
        "members": {"sdb1": "active", "sda1": "active"},
        "failed_devices": 0,
        "spare_devices": 0,
        "size": 976630464 * 1024,
        "devices": 2,
        "active_devices": 2,
        "working_devices": 2,
        "detail_state": "clean",
        "degraded": 0,
    }
    assert document["degraded_count"] == 0
    assert (await health(plugin)).status is HealthState.HEALTHY


async def test_degraded_raid5_rebuilding() -> None:
    runner = FakeRunner(
        {
            MDSTAT: recorded(ID, "mdstat-raid5-recovering.txt"),
            detail("md127"): recorded(ID, "detail-md127-raid5.txt"),
            detail("md0"): recorded(ID, "detail-md0-resync-delayed.txt"),
        }
    )
    plugin = make(MdadmPlugin, runner=runner)
    document = await collect_checked(plugin)
    md127 = document["arrays"]["md127"]
    assert md127["level"] == "raid5"
    assert md127["members"]["sdd1"] == "faulty"
    assert md127["devices"] == 4
    assert md127["active_devices"] == 3
    assert md127["working_devices"] == 4
    assert md127["failed_devices"] == 1
    assert md127["spare_devices"] == 1
    assert md127["sync_action"] == "recovery"
    # mdadm --detail rounds the rebuild to whole percent; it is read last.
    assert md127["sync_progress"] == 27.0
    assert md127["sync_finish"] == 301.5
    assert md127["sync_speed"] == 156732
    assert md127["detail_state"] == "clean, degraded, recovering"
    assert md127["degraded"] == 1
    md0 = document["arrays"]["md0"]
    assert md0["sync_action"] == "resync (delayed)"
    assert md0["degraded"] == 0
    assert document["degraded_count"] == 1
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == (
        "md127 (raid5): 3/4 devices active, failed: sdd1, clean, degraded, recovering, recovery 27%"
    )


async def test_mdstat_only() -> None:
    runner = FakeRunner({MDSTAT: recorded(ID, "mdstat-raid5-recovering.txt")})
    plugin = make(MdadmPlugin, {"detail": False}, runner)
    document = await collect_checked(plugin)
    assert document["arrays"]["md127"]["sync_progress"] == 27.4
    assert document["arrays"]["md127"]["size"] == 11720661504 * 1024
    assert runner.calls == [MDSTAT]


async def test_inactive_array_is_unhealthy() -> None:
    runner = FakeRunner({MDSTAT: recorded(ID, "mdstat-inactive.txt")})
    plugin = make(MdadmPlugin, {"detail": False}, runner)
    document = await collect_checked(plugin)
    md127 = document["arrays"]["md127"]
    assert md127["state"] == "inactive"
    assert md127["level"] == ""
    assert md127["members"] == {"sdc": "spare", "sdb": "spare"}
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert status.details["arrays"] == ["md127"]


async def test_no_arrays() -> None:
    plugin = make(MdadmPlugin, runner=FakeRunner({MDSTAT: recorded(ID, "mdstat-none.txt")}))
    document = await collect_checked(plugin)
    assert document["array_count"] == 0
    assert (await health(plugin)).status is HealthState.NOT_APPLICABLE
    assert plugin.assess(document).status is HealthState.NOT_APPLICABLE


async def test_detail_needs_root() -> None:
    runner = FakeRunner(
        {
            MDSTAT: recorded(ID, "mdstat-raid1.txt"),
            detail("md0"): failing("mdadm: cannot open /dev/md0: Permission denied"),
        }
    )
    plugin = make(MdadmPlugin, runner=runner)
    with pytest.raises(DependencyMissingError, match="detail: false"):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY


async def test_mdadm_missing() -> None:
    runner = FakeRunner({MDSTAT: recorded(ID, "mdstat-raid1.txt")}, missing=["mdadm"])
    plugin = make(MdadmPlugin, runner=runner)
    with pytest.raises(DependencyMissingError, match="not installed"):
        await plugin.collect_data()
