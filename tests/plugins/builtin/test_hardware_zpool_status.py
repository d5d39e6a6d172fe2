"""The zpool-status plugin on recorded OpenZFS 2.x output (ZFS cannot run in the test VM)."""

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

from unity_catalogue.zpool_status import ZpoolStatusPlugin
from unity_sdk import CollectionError, DependencyMissingError, HealthState

ID = "zpool-status"
LIST = (
    "zpool",
    "list",
    "-Hp",
    "-o",
    "name,size,allocated,free,fragmentation,capacity,dedupratio,health",
)
STATUS = ("zpool", "status", "-p")


def host(case: str, **config: object) -> ZpoolStatusPlugin:
    runner = FakeRunner(
        {LIST: recorded(ID, f"list-{case}.txt"), STATUS: recorded(ID, f"status-{case}.txt")}
    )
    return make(ZpoolStatusPlugin, config, runner)


async def test_healthy_pools() -> None:
    plugin = host("healthy")
    document = await collect_checked(plugin)
    assert document["pool_count"] == 2
    assert document["unhealthy_count"] == 0
    tank = document["pools"]["tank"]
    assert tank["state"] == "ONLINE"
    assert tank["online"] == 1
    assert tank["size"] == 15994458210304
    assert tank["allocated"] == 9116841197568
    assert tank["free"] == 6877617012736
    assert tank["capacity"] == 57
    assert tank["fragmentation"] == 12
    assert tank["dedup_ratio"] == 1.0
    assert tank["read_errors"] == tank["write_errors"] == tank["checksum_errors"] == 0
    assert tank["errors"] == "No known data errors"
    assert tank["scan"]["function"] == "scrub"
    assert tank["scan"]["state"] == "finished"
    assert tank["scan"]["errors"] == 0
    assert tank["scan"]["ended"] == "Sun Mar 10 06:05:10 2024"
    vdevs = tank["vdevs"]
    assert vdevs["raidz2-0"] == {
        "state": "ONLINE",
        "read_errors": 0,
        "write_errors": 0,
        "checksum_errors": 0,
    }
    assert vdevs["sdf"]["state"] == "ONLINE"
    assert vdevs["ata-WDC_WD40EFRX-68N32N0_WD-WCC7K5"] == {"state": "AVAIL"}
    assert not {"logs", "cache", "spares"} & set(vdevs)
    assert len(document["pools"]["rpool"]["vdevs"]) == 4
    assert (await health(plugin)).status is HealthState.HEALTHY


async def test_degraded_resilvering_and_unavailable_pools() -> None:
    plugin = host("degraded")
    document = await collect_checked(plugin)
    assert document["unhealthy_count"] == 2
    tank = document["pools"]["tank"]
    assert tank["state"] == "DEGRADED"
    assert tank["online"] == 0
    assert tank["capacity"] == 85
    assert tank["read_errors"] == 94
    assert tank["write_errors"] == 312
    assert tank["checksum_errors"] == 7
    faulted = tank["vdevs"]["ata-WDC_WD40EFRX-68N32N0_WD-WCC7K2"]
    assert faulted["state"] == "FAULTED"
    assert faulted["note"] == "too many errors"
    assert tank["scan"]["function"] == "resilver"
    assert tank["scan"]["state"] == "in_progress"
    assert tank["scan"]["progress"] == 12.56
    assert tank["status"].startswith("One or more devices is currently being resilvered.")
    backup = document["pools"]["backup"]
    assert backup["state"] == "UNAVAIL"
    assert "size" not in backup
    assert "scan" not in backup
    status = await health(plugin)
    assert status.status is HealthState.UNHEALTHY
    assert status.details["pools"] == ["backup"]
    assert "tank: DEGRADED (raidz2-0 DEGRADED, spare-1 DEGRADED" in status.message
    assert "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K2 FAULTED" in status.message
    assert "413 vdev I/O or checksum errors" in status.message
    assert "85% full" in status.message


async def test_capacity_alone_is_degraded() -> None:
    plugin = host("healthy", capacity_warn=50)
    status = await health(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == "tank: 57% full"


@pytest.mark.parametrize(
    "reply",
    [recorded(ID, "list-none.txt"), failing("no pools available\n", exit_status=0)],
    ids=["stdout", "stderr"],
)
async def test_no_pools(reply: Reply) -> None:
    plugin = make(ZpoolStatusPlugin, runner=FakeRunner({LIST: reply}))
    document = await collect_checked(plugin)
    assert document == {"pools": {}, "pool_count": 0, "unhealthy_count": 0}
    status = await health(plugin)
    assert status.status is HealthState.NOT_APPLICABLE
    assert status.message == "no ZFS pools are imported"
    assert plugin.assess(document) == status


async def test_module_not_loaded_and_tool_missing() -> None:
    stderr = (
        "The ZFS modules are not loaded.\nTry running '/sbin/modprobe zfs' as root to load them.\n"
    )
    plugin = make(ZpoolStatusPlugin, runner=FakeRunner({LIST: failing(stderr)}))
    with pytest.raises(DependencyMissingError, match="ZFS kernel module"):
        await plugin.collect_data()
    assert (await health(plugin)).status is HealthState.UNHEALTHY
    missing = make(ZpoolStatusPlugin, runner=FakeRunner({}, missing=["zpool"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await missing.collect_data()
    broken = make(ZpoolStatusPlugin, runner=FakeRunner({LIST: failing("internal error")}))
    with pytest.raises(CollectionError, match="internal error"):
        await broken.collect_data()
