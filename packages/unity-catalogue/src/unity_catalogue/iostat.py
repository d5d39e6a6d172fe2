"""The ``iostat`` built-in plugin: per-disk IOPS, throughput, latency and utilisation.

Runs ``iostat -x -o JSON -d <seconds> 2`` (sysstat 11.5 and later) and reads
the second report, which covers the sampling interval (the first covers the
time since boot). The JSON is ``sysstat.hosts[0].statistics[].disk[]`` with
``disk_device``, ``r/s``, ``w/s``, ``rkB/s``, ``wkB/s``, ``r_await``,
``w_await``, ``aqu-sz`` and ``util``; sysstat before 12 also prints
``await`` and ``avgqu-sz``, later versions let the plugin derive ``await``.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    CollectionError,
    HealthStatus,
    MetricField,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Requirements,
)

__all__ = ["IostatConfig", "IostatPlugin"]

# iostat's field -> (document key, unit, description).
_FIELDS = {
    "r/s": ("reads", "1/s", "Read requests completed per second"),
    "w/s": ("writes", "1/s", "Write requests completed per second"),
    "rkB/s": ("read_kb", "KiB/s", "KiB read per second"),
    "wkB/s": ("write_kb", "KiB/s", "KiB written per second"),
    "r_await": ("read_await", "ms", "Average time a read request took, queue included"),
    "w_await": ("write_await", "ms", "Average time a write request took, queue included"),
    "await": ("await", "ms", "Average time a read or write request took"),
    "aqu-sz": ("queue_size", "requests", "Average queue length"),
    "avgqu-sz": ("queue_size", "requests", "Average queue length"),
    "util": ("util", "%", "Share of time the device was busy"),
}

_METRICS = [
    *(
        MetricField(name=f"devices.*.{key}", unit=unit, description=description)
        for field, (key, unit, description) in _FIELDS.items()
        if field != "avgqu-sz"
    ),
    MetricField(name="device_count", unit="count", description="Devices reported"),
    MetricField(name="max_util", unit="%", description="Busiest device's utilisation"),
    MetricField(name="total_read_kb", unit="KiB/s", description="KiB read per second, all"),
    MetricField(
        name="total_write_kb", unit="KiB/s", description="KiB written per second, all devices"
    ),
]


class IostatConfig(BaseModel):
    """Config of the ``iostat`` plugin."""

    model_config = ConfigDict(extra="forbid")

    sample_seconds: int = Field(
        default=1, ge=1, le=60, description="Length of the measured interval in seconds."
    )
    exclude: list[str] = Field(
        default_factory=lambda: ["loop*", "ram*", "zram*"],
        description="Device name patterns (shell style) left out of the report.",
    )
    util_warn: float = Field(
        default=95.0,
        gt=0,
        le=100,
        description="The health check is degraded while a device is busier than this (%).",
    )


class IostatPlugin(PluginBase[IostatConfig]):
    """Measures disk activity over a short interval with sysstat's iostat."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="iostat",
            name="Disk I/O (iostat)",
            version="1.0.0",
            description="Per-device requests per second, throughput, request latency, queue "
            "length and utilisation over a short interval, from iostat -x -o JSON.",
            author="Unity developers",
            category=PluginCategory.STORAGE,
            tags=["iostat", "sysstat", "disk", "io", "latency"],
            config_schema=IostatConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["iostat"]),
            default_interval=60,
            timeout=90,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        argv = ["iostat", "-x", "-o", "JSON", "-d", str(cfg.sample_seconds), "2"]
        result = await self.runner.run(argv, timeout=cfg.sample_seconds + 20)
        devices = {
            name: values
            for name, values in _report(result.check().stdout).items()
            if not any(fnmatch.fnmatchcase(name, pattern) for pattern in cfg.exclude)
        }
        return {
            "devices": devices,
            "device_count": len(devices),
            "max_util": max((d.get("util", 0.0) for d in devices.values()), default=0.0),
            "total_read_kb": round(sum(d.get("read_kb", 0.0) for d in devices.values()), 2),
            "total_write_kb": round(sum(d.get("write_kb", 0.0) for d in devices.values()), 2),
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """A device busier than util_warn: degraded."""
        cfg = self.config
        busy = {
            name: device["util"]
            for name, device in document["devices"].items()
            if device.get("util", 0.0) > cfg.util_warn
        }
        if busy:
            listing = ", ".join(f"{name} {util:g}%" for name, util in busy.items())
            return HealthStatus.degraded(f"devices busier than {cfg.util_warn:g}%: {listing}")
        return HealthStatus.healthy()


def _report(stdout: str) -> dict[str, dict[str, float]]:
    """Per device: the fields of the last report (the measured interval)."""
    try:
        data = json.loads(stdout)
        statistics = data["sysstat"]["hosts"][0]["statistics"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise CollectionError(f"iostat did not print its JSON report: {exc!r}") from exc
    if not statistics:
        raise CollectionError("iostat printed no report")
    devices: dict[str, dict[str, float]] = {}
    for entry in statistics[-1].get("disk", []):
        name = entry.get("disk_device")
        if not isinstance(name, str):
            continue
        values = {
            key: float(entry[field])
            for field, (key, _, _) in _FIELDS.items()
            if isinstance(entry.get(field), int | float)
        }
        if "await" not in values and "read_await" in values and "write_await" in values:
            values["await"] = _combined_await(values)
        devices[name] = values
    return devices


def _combined_await(values: dict[str, float]) -> float:
    """sysstat 12 dropped ``await``; derive it from the read and write figures."""
    requests = values.get("reads", 0.0) + values.get("writes", 0.0)
    if requests == 0:
        return 0.0
    weighted = values.get("reads", 0.0) * values["read_await"]
    weighted += values.get("writes", 0.0) * values["write_await"]
    return round(weighted / requests, 2)
