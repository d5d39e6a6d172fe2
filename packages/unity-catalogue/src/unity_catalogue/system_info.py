"""The ``system-info`` built-in plugin: CPU, memory, swap, uptime and platform of the hub host.

Like every built-in it uses only the public SDK, exactly as a third-party plugin would.
"""

from __future__ import annotations

import platform
import socket
import time
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    Requirements,
)

__all__ = ["SystemInfoConfig", "SystemInfoPlugin"]

_GAUGE = MetricKind.GAUGE
_INFO = MetricKind.INFO

_METRICS = [
    MetricField(name="cpu.percent", unit="%", description="CPU usage of all cores since last run"),
    MetricField(
        name="cpu.per_cpu.*",
        unit="%",
        description="CPU usage of each logical CPU since the last run (config per_cpu)",
    ),
    MetricField(name="cpu.load.avg1", description="System load average over 1 minute"),
    MetricField(name="cpu.load.avg5", description="System load average over 5 minutes"),
    MetricField(name="cpu.load.avg15", description="System load average over 15 minutes"),
    MetricField(
        name="cpu.count.*",
        unit="count",
        display=MetricDisplay.FACT,
        description="Number of logical and physical CPUs, each where the OS reports it",
    ),
    MetricField(
        name="cpu.frequency.*",
        unit="MHz",
        description="Current, minimum and maximum CPU frequency, each where the OS reports it",
    ),
    MetricField(
        name="memory.total",
        unit="bytes",
        display=MetricDisplay.FACT,
        description="Total physical memory",
    ),
    MetricField(name="memory.used", unit="bytes", description="Memory in use"),
    MetricField(
        name="memory.available",
        unit="bytes",
        description="Memory that can be given to processes without swapping",
    ),
    MetricField(name="memory.percent", unit="%", description="Share of memory in use"),
    MetricField(
        name="swap.total", unit="bytes", display=MetricDisplay.FACT, description="Total swap space"
    ),
    MetricField(name="swap.used", unit="bytes", description="Swap space in use"),
    MetricField(name="swap.percent", unit="%", description="Share of swap space in use"),
    MetricField(
        name="boot_time",
        unit="s",
        display=MetricDisplay.FACT,
        description="When the host booted, as Unix time",
    ),
    MetricField(name="uptime", unit="s", description="Seconds since the host booted"),
    MetricField(name="hostname", kind=_INFO, description="Host name of the machine"),
    MetricField(name="platform.os", kind=_INFO, description="Operating system (Linux, Darwin)"),
    MetricField(name="platform.release", kind=_INFO, description="Operating system release"),
    MetricField(name="platform.machine", kind=_INFO, description="Machine type (x86_64)"),
    MetricField(
        name="platform.python_version", kind=_INFO, description="Python version of the hub"
    ),
]


class SystemInfoConfig(BaseModel):
    """Config of the ``system-info`` plugin."""

    model_config = ConfigDict(extra="forbid")

    per_cpu: bool = Field(
        default=False,
        description="Also report the usage of every logical CPU under cpu.per_cpu.",
    )


class SystemInfoPlugin(PluginBase[SystemInfoConfig]):
    """Reports how busy the host is and what it is."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="system-info",
            name="System info",
            version="1.0.0",
            description="CPU usage, load, memory, swap, uptime and platform of the host.",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["cpu", "memory", "swap", "load", "uptime"],
            config_schema=SystemInfoConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["psutil"]),
            default_interval=30,
            timeout=10,
            alert_rules=[
                AlertRule(
                    id="memory-high",
                    metric="memory.percent",
                    threshold=90,
                    clear=85,
                    for_seconds=600,
                    summary="memory on {host} is {value}% used (limit {threshold}%)",
                ),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        boot_time = psutil.boot_time()
        return {
            "cpu": _cpu(per_cpu=cfg.per_cpu),
            "memory": _memory(),
            "swap": _swap(),
            "boot_time": boot_time,
            "uptime": max(0.0, time.time() - boot_time),
            "hostname": socket.gethostname(),
            "platform": {
                "os": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
                "python_version": platform.python_version(),
            },
        }


def _cpu(*, per_cpu: bool) -> dict[str, Any]:
    # interval=None never blocks: psutil measures since its previous call, which
    # is the previous run of this plugin (or the psutil import on the first run).
    cpu: dict[str, Any] = {"percent": psutil.cpu_percent(interval=None)}
    if per_cpu:
        cpu["per_cpu"] = psutil.cpu_percent(interval=None, percpu=True)
    avg1, avg5, avg15 = psutil.getloadavg()
    cpu["load"] = {"avg1": avg1, "avg5": avg5, "avg15": avg15}
    counts = {
        "logical": psutil.cpu_count(logical=True),
        "physical": psutil.cpu_count(logical=False),
    }
    cpu["count"] = {kind: n for kind, n in counts.items() if n is not None}
    cpu["frequency"] = _frequency()
    return cpu


def _frequency() -> dict[str, float]:
    # cpu_freq is missing on some platforms, raises on Linux hosts (often VMs and
    # containers) that expose no frequency and may return None; an unknown
    # minimum or maximum comes back as None or 0.0, neither of which is a frequency.
    cpu_freq = getattr(psutil, "cpu_freq", None)
    if cpu_freq is None:
        return {}
    try:
        freq = cpu_freq()
    except (NotImplementedError, OSError):
        return {}
    if freq is None:
        return {}
    readings = {"current": freq.current, "min": freq.min, "max": freq.max}
    return {name: float(mhz) for name, mhz in readings.items() if mhz and mhz > 0}


def _memory() -> dict[str, Any]:
    mem = psutil.virtual_memory()
    return {
        "total": mem.total,
        "used": mem.used,
        "available": mem.available,
        "percent": mem.percent,
    }


def _swap() -> dict[str, Any]:
    swap = psutil.swap_memory()
    return {"total": swap.total, "used": swap.used, "percent": swap.percent}
