"""The ``lsblk`` built-in plugin: the inventory of block devices (disks, partitions, LVM, RAID).

Runs ``lsblk -J -b -o NAME,TYPE,SIZE,ROTA,MOUNTPOINT,FSTYPE,MODEL,SERIAL,TRAN``
(util-linux 2.27 and later) and flattens its ``blockdevices`` tree
(``children`` nest partitions, LVM volumes, md arrays and crypt mappings
under their parents). util-linux 2.33 and later print sizes as numbers and
ROTA as a boolean; older versions print every value as a string, which the
plugin also reads.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    CollectionError,
    HealthStatus,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Requirements,
)

__all__ = ["LsblkConfig", "LsblkPlugin"]

_COMMAND = ["lsblk", "-J", "-b", "-o", "NAME,TYPE,SIZE,ROTA,MOUNTPOINT,FSTYPE,MODEL,SERIAL,TRAN"]
_TIMEOUT = 15.0
_TEXT_FIELDS = {
    "type": "type",
    "mountpoint": "mountpoint",
    "fstype": "fstype",
    "model": "model",
    "serial": "serial",
    "tran": "transport",
}

_METRICS = [
    MetricField(
        name="devices.*.type", kind=MetricKind.INFO, description="disk, part, lvm, raid1..."
    ),
    MetricField(name="devices.*.size", unit="bytes", description="Size of the device"),
    MetricField(
        name="devices.*.rotational", unit="bool", description="1 for spinning disks, 0 for flash"
    ),
    MetricField(name="devices.*.parent", kind=MetricKind.INFO, description="Parent device"),
    MetricField(name="devices.*.mountpoint", kind=MetricKind.INFO, description="Mountpoint"),
    MetricField(name="devices.*.fstype", kind=MetricKind.INFO, description="Filesystem type"),
    MetricField(name="devices.*.model", kind=MetricKind.INFO, description="Disk model"),
    MetricField(name="devices.*.serial", kind=MetricKind.INFO, description="Disk serial number"),
    MetricField(
        name="devices.*.transport", kind=MetricKind.INFO, description="sata, nvme, usb, sas..."
    ),
    MetricField(name="types.*", unit="count", description="Devices per type"),
    MetricField(name="disk_count", unit="count", description="Whole disks"),
    MetricField(name="rotational_disk_count", unit="count", description="Spinning disks"),
    MetricField(name="total_disk_size", unit="bytes", description="Size of all whole disks"),
]


class LsblkConfig(BaseModel):
    """Config of the ``lsblk`` plugin."""

    model_config = ConfigDict(extra="forbid")

    exclude_types: list[str] = Field(
        default_factory=lambda: ["loop"],
        description="Device types left out (loop devices of snaps and images by default).",
    )


class LsblkPlugin(PluginBase[LsblkConfig]):
    """Lists the host's block devices."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="lsblk",
            name="Block devices (lsblk)",
            version="1.0.0",
            description="Inventory of disks, partitions, LVM volumes and RAID arrays: type, "
            "size, rotational, mountpoint, filesystem, model, serial and transport.",
            author="Unity developers",
            category=PluginCategory.STORAGE,
            tags=["lsblk", "disk", "inventory", "storage"],
            config_schema=LsblkConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["lsblk"]),
            default_interval=300,
            timeout=30,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        result = (await self.runner.run(_COMMAND, timeout=_TIMEOUT)).check()
        try:
            tree = json.loads(result.stdout)["blockdevices"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CollectionError(f"lsblk -J did not print its device tree: {exc!r}") from exc
        devices: dict[str, dict[str, Any]] = {}
        _flatten(tree, None, devices, set(cfg.exclude_types))
        disks = [d for d in devices.values() if d.get("type") == "disk"]
        return {
            "devices": devices,
            "types": dict(Counter(str(d.get("type", "")) for d in devices.values())),
            "disk_count": len(disks),
            "rotational_disk_count": sum(d.get("rotational", 0) for d in disks),
            "total_disk_size": sum(d.get("size", 0) for d in disks),
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return HealthStatus.healthy(f"{document['disk_count']} disk(s)")


def _flatten(
    nodes: Any, parent: str | None, devices: dict[str, dict[str, Any]], excluded: set[str]
) -> None:
    if not isinstance(nodes, list):
        return
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            continue
        name = node["name"]
        if node.get("type") in excluded:
            continue
        # An md array or a multi-PV volume sits under each of its members: keep the first.
        if name not in devices:
            devices[name] = _device(node, parent)
        _flatten(node.get("children"), name, devices, excluded)


def _device(node: dict[str, Any], parent: str | None) -> dict[str, Any]:
    device: dict[str, Any] = {
        key: str(node[field]).strip()
        for field, key in _TEXT_FIELDS.items()
        if node.get(field) not in (None, "")
    }
    size = node.get("size")
    if isinstance(size, int) or (isinstance(size, str) and size.isdigit()):
        device["size"] = int(size)
    rota = node.get("rota")
    if isinstance(rota, bool) or rota in ("0", "1"):
        device["rotational"] = int(rota in (True, "1"))
    if parent:
        device["parent"] = parent
    return device
