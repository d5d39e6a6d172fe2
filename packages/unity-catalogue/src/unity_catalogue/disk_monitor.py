"""The ``disk-monitor`` built-in plugin: usage of mounted filesystems and disk IO counters.

Like every built-in it uses only the public SDK, exactly as a third-party plugin would.
Health (``assess``, after every run): a filesystem fuller than ``warn_percent``
(default 90) is degraded, one at 99 % or more unhealthy.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

import psutil
from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    HealthStatus,
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    Requirements,
)

__all__ = ["DEFAULT_EXCLUDED_FSTYPES", "DiskMonitorConfig", "DiskMonitorPlugin"]

# Kernel, memory-backed and container-image filesystems: their usage says nothing
# about the disks of the host.
DEFAULT_EXCLUDED_FSTYPES = [
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
]

_COUNTER = MetricKind.COUNTER
# Past this a filesystem is full in practice: writes fail (root's reserve aside).
FULL_PERCENT = 99.0

_METRICS = [
    MetricField(name="partitions.*.device", kind=MetricKind.INFO, description="Mounted device"),
    MetricField(name="partitions.*.fstype", kind=MetricKind.INFO, description="Filesystem type"),
    MetricField(
        name="partitions.*.total",
        unit="bytes",
        display=MetricDisplay.FACT,
        description="Size of the filesystem",
    ),
    MetricField(name="partitions.*.used", unit="bytes", description="Space in use"),
    MetricField(name="partitions.*.free", unit="bytes", description="Space free for users"),
    MetricField(name="partitions.*.percent", unit="%", description="Share of space in use"),
    MetricField(
        name="max_used_percent",
        unit="%",
        description="Highest partitions.*.percent (0 when no partition is reported)",
    ),
    MetricField(
        name="io.*.bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes read and written by all disks (where the OS reports disk IO)",
    ),
    MetricField(
        name="io.*.count",
        unit="count",
        kind=_COUNTER,
        description="Read and write operations of all disks (where the OS reports disk IO)",
    ),
    MetricField(
        name="disks.*.*.bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes read and written per disk (config per_disk)",
    ),
    MetricField(
        name="disks.*.*.count",
        unit="count",
        kind=_COUNTER,
        description="Read and write operations per disk (config per_disk)",
    ),
]


class _DiskIO(Protocol):
    """The fields of psutil's ``sdiskio`` this plugin reports."""

    @property
    def read_bytes(self) -> int: ...
    @property
    def read_count(self) -> int: ...
    @property
    def write_bytes(self) -> int: ...
    @property
    def write_count(self) -> int: ...


class DiskMonitorConfig(BaseModel):
    """Config of the ``disk-monitor`` plugin."""

    model_config = ConfigDict(extra="forbid")

    include_mountpoints: list[str] = Field(
        default_factory=list,
        description="Report only these mountpoints, whatever their filesystem type; "
        "empty reports every mounted filesystem not excluded by exclude_fstypes.",
    )
    exclude_fstypes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_FSTYPES),
        description="Filesystem types never reported unless listed in include_mountpoints.",
    )
    per_disk: bool = Field(
        default=False, description="Also report IO counters of every disk under disks."
    )
    warn_percent: float = Field(
        default=90.0,
        gt=0,
        le=100,
        description="The health check is degraded while a partition is fuller than this.",
    )


class DiskMonitorPlugin(PluginBase[DiskMonitorConfig]):
    """Reports how full the filesystems are and how much the disks read and write."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="disk-monitor",
            name="Disk monitor",
            version="1.0.0",
            description="Usage of every mounted filesystem and disk read/write counters.",
            author="Unity developers",
            category=PluginCategory.STORAGE,
            tags=["disk", "filesystem", "storage", "io"],
            config_schema=DiskMonitorConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["psutil"]),
            default_interval=60,
            timeout=30,
            alert_rules=[
                AlertRule(
                    id="disk-space-low",
                    metric="partitions.*.percent",
                    threshold=90,
                    clear=85,
                    for_seconds=300,
                    summary="{item} on {host} is {value}% full (limit {threshold}%)",
                ),
                AlertRule(
                    id="disk-space-critical",
                    metric="partitions.*.percent",
                    threshold=97,
                    clear=95,
                    severity="critical",
                    summary="{item} on {host} is {value}% full (limit {threshold}%)",
                ),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        partitions = _partitions(cfg, self.logger)
        document: dict[str, Any] = {
            "partitions": partitions,
            "max_used_percent": max((p["percent"] for p in partitions.values()), default=0.0),
        }
        total = psutil.disk_io_counters()
        # None on hosts that expose no disk statistics (some containers).
        if total is not None:
            document["io"] = _io(total)
        if cfg.per_disk:
            document["disks"] = {
                name: _io(counters)
                for name, counters in psutil.disk_io_counters(perdisk=True).items()
            }
        return document

    async def health_check(self) -> HealthStatus:
        return self.assess(await self.collect_data())

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """A filesystem fuller than warn_percent: degraded; one (nearly) full: unhealthy."""
        cfg = self.config
        partitions: dict[str, dict[str, Any]] = document["partitions"]
        full = {
            mountpoint: usage["percent"]
            for mountpoint, usage in partitions.items()
            if usage["percent"] > cfg.warn_percent
        }
        if not full:
            return HealthStatus.healthy(
                f"{len(partitions)} filesystem(s), the fullest {document['max_used_percent']:g} %"
            )
        listing = ", ".join(f"{mountpoint} {percent:g} %" for mountpoint, percent in full.items())
        if max(full.values()) >= FULL_PERCENT:
            return HealthStatus.unhealthy(f"filesystem(s) full: {listing}", partitions=full)
        return HealthStatus.degraded(
            f"{len(full)} filesystem(s) above {cfg.warn_percent:g} % used: {listing}",
            partitions=full,
        )


def _partitions(cfg: DiskMonitorConfig, logger: logging.Logger) -> dict[str, dict[str, Any]]:
    # all=True because psutil's own filter drops every "nodev" filesystem, and
    # that includes network mounts (nfs, cifs) a homelab cares most about.
    mounted = psutil.disk_partitions(all=True)
    if cfg.include_mountpoints:
        wanted = set(cfg.include_mountpoints)
        selected = [p for p in mounted if p.mountpoint in wanted]
    else:
        excluded = set(cfg.exclude_fstypes)
        # Containers bind-mount single files (/etc/hosts); they are not filesystems.
        selected = [p for p in mounted if p.fstype not in excluded and os.path.isdir(p.mountpoint)]
    # Later mounts on the same mountpoint hide earlier ones, so the last entry
    # describes what disk_usage() measures.
    latest = {p.mountpoint: p for p in selected}
    partitions: dict[str, dict[str, Any]] = {}
    for mountpoint, partition in latest.items():
        try:
            usage = psutil.disk_usage(mountpoint)
        except OSError as exc:
            # One unreadable or vanished mount must not hide all the others.
            logger.debug("skipping %s: %s", mountpoint, exc)
            continue
        partitions[mountpoint] = {
            "device": partition.device,
            "fstype": partition.fstype,
            "total": usage.total,
            "used": usage.used,
            "free": usage.free,
            "percent": usage.percent,
        }
    return partitions


def _io(counters: _DiskIO) -> dict[str, dict[str, int]]:
    return {
        "read": {"bytes": counters.read_bytes, "count": counters.read_count},
        "write": {"bytes": counters.write_bytes, "count": counters.write_count},
    }
