"""The lsblk plugin: the real lsblk of this host, and recorded util-linux 2.29 / 2.38 trees."""

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
    require_tool,
)

from unity_catalogue.lsblk import LsblkPlugin
from unity_sdk import CollectionError, DependencyMissingError, HealthState, LocalRunner

ID = "lsblk"
LSBLK = ("lsblk", "-J", "-b", "-o", "NAME,TYPE,SIZE,ROTA,MOUNTPOINT,FSTYPE,MODEL,SERIAL,TRAN")


def plugin_for(name: str, **config: object) -> LsblkPlugin:
    return make(LsblkPlugin, config, FakeRunner({LSBLK: recorded(ID, name)}))


async def test_real_lsblk_matches_sysfs() -> None:
    require_tool("lsblk")
    plugin = make(LsblkPlugin, runner=LocalRunner())
    document = await collect_checked(plugin)
    for name, device in document["devices"].items():
        sysfs = Path("/sys/class/block") / name
        if device["type"] == "disk" and sysfs.exists():
            # sysfs counts 512-byte sectors whatever the device's block size.
            assert device["size"] == int((sysfs / "size").read_text()) * 512
            assert device["rotational"] == int((sysfs / "queue/rotational").read_text())
    assert document["disk_count"] == document["types"].get("disk", 0)
    assert (await health(plugin)).status is HealthState.HEALTHY


async def test_homelab_server_tree() -> None:
    plugin = plugin_for("server-util-linux-2.38.json")
    document = await collect_checked(plugin)
    assert "loop0" not in document["devices"]
    assert document["types"] == {"disk": 4, "raid1": 1, "part": 3, "rom": 1, "lvm": 2}
    assert document["disk_count"] == 4
    assert document["rotational_disk_count"] == 2
    assert document["total_disk_size"] == 2 * 4000787030016 + 1000204886016 + 500107862016
    assert document["devices"]["sda"] == {
        "type": "disk",
        "fstype": "linux_raid_member",
        "model": "WDC WD40EFRX-68N32N0",
        "serial": "WD-WCC7K4XXXXX1",
        "transport": "sata",
        "size": 4000787030016,
        "rotational": 1,
    }
    # md0 sits under both mirrors; it is listed once, under the first.
    assert document["devices"]["md0"]["parent"] == "sda"
    assert document["devices"]["md0"]["mountpoint"] == "/srv"
    assert document["devices"]["pve-root"]["parent"] == "nvme0n1p2"
    assert document["devices"]["sdc"]["transport"] == "usb"
    assert "parent" not in document["devices"]["sr0"]
    assert (await health(plugin)).message == "4 disk(s)"


async def test_loop_devices_on_request() -> None:
    document = await collect_checked(plugin_for("server-util-linux-2.38.json", exclude_types=[]))
    assert document["devices"]["loop0"]["fstype"] == "squashfs"
    assert document["types"]["loop"] == 1


async def test_old_util_linux_prints_strings() -> None:
    document = await collect_checked(plugin_for("old-util-linux-2.29.json"))
    assert document["devices"]["sda"]["size"] == 240057409536
    assert document["devices"]["sda"]["rotational"] == 0
    assert document["devices"]["sdb"]["rotational"] == 1
    assert document["devices"]["sda2"]["mountpoint"] == "[SWAP]"
    assert document["rotational_disk_count"] == 1


async def test_recorded_vm() -> None:
    document = await collect_checked(plugin_for("vm-util-linux-2.38.json"))
    assert document["disk_count"] >= 1


async def test_errors() -> None:
    missing = make(LsblkPlugin, runner=FakeRunner({}, missing=["lsblk"]))
    with pytest.raises(DependencyMissingError, match="not installed"):
        await missing.collect_data()
    assert (await health(missing)).status is HealthState.UNHEALTHY
    old = make(LsblkPlugin, runner=FakeRunner({LSBLK: failing("lsblk: invalid option -- 'J'")}))
    with pytest.raises(CollectionError, match="invalid option"):
        await old.collect_data()
    garbage = make(LsblkPlugin, runner=FakeRunner({LSBLK: failing("", 0, "NAME TYPE\nsda disk\n")}))
    with pytest.raises(CollectionError, match="device tree"):
        await garbage.collect_data()
