"""The ``network-monitor`` built-in plugin: traffic counters, rates and connections.

Like every built-in it uses only the public SDK, exactly as a third-party plugin would.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    Requirements,
)

from ._linux import socket_states

__all__ = ["NetworkMonitorConfig", "NetworkMonitorPlugin"]

# (field, unit, description) of every psutil counter reported, totals and per NIC.
_COUNTERS = [
    ("bytes_sent", "bytes", "Bytes sent"),
    ("bytes_recv", "bytes", "Bytes received"),
    ("packets_sent", "count", "Packets sent"),
    ("packets_recv", "count", "Packets received"),
    ("errin", "count", "Receive errors"),
    ("errout", "count", "Send errors"),
    ("dropin", "count", "Incoming packets dropped"),
    ("dropout", "count", "Outgoing packets dropped"),
]
_RATES = ("bytes_sent", "bytes_recv")

_METRICS = [
    *(
        MetricField(
            name=f"totals.{field}",
            unit=unit,
            kind=MetricKind.COUNTER,
            description=f"{description}, all reported interfaces",
        )
        for field, unit, description in _COUNTERS
    ),
    MetricField(
        name="rates.*",
        unit="bytes/s",
        description="bytes_sent and bytes_recv per second since the last run "
        "(absent on the first run)",
    ),
    *(
        MetricField(
            name=f"nics.*.{field}",
            unit=unit,
            kind=MetricKind.COUNTER,
            description=f"{description} (config per_nic)",
        )
        for field, unit, description in _COUNTERS
    ),
    MetricField(
        name="nics.*.isup",
        kind=MetricKind.INFO,
        display=MetricDisplay.STATE,
        description="True when the NIC is up",
    ),
    MetricField(
        name="nics.*.speed",
        unit="Mbit/s",
        description="Link speed, where the driver reports one",
    ),
    MetricField(
        name="nics.*.rates.*",
        unit="bytes/s",
        description="bytes_sent and bytes_recv per second since the last run",
    ),
    MetricField(
        name="connections.*",
        unit="count",
        description="Internet sockets in each state (absent where the OS denies access)",
    ),
]


class NetworkMonitorConfig(BaseModel):
    """Config of the ``network-monitor`` plugin."""

    model_config = ConfigDict(extra="forbid")

    per_nic: bool = Field(
        default=False, description="Also report counters, state and rates of every NIC."
    )
    exclude_interfaces: list[str] = Field(
        default_factory=lambda: ["lo"],
        description="Interfaces left out of totals, rates and nics: names or shell "
        "patterns such as veth*.",
    )


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    nics: dict[str, dict[str, int]]


class NetworkMonitorPlugin(PluginBase[NetworkMonitorConfig]):
    """Reports how much the host sends and receives and how many sockets it has open."""

    def __init__(self, config: NetworkMonitorConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._previous: _Sample | None = None

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="network-monitor",
            name="Network monitor",
            version="1.0.0",
            description="Traffic and error counters, throughput and connection states.",
            author="Unity developers",
            category=PluginCategory.NETWORK,
            tags=["network", "traffic", "bandwidth", "connections"],
            config_schema=NetworkMonitorConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["psutil"]),
            default_interval=30,
            timeout=20,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        sample = _Sample(
            at=time.monotonic(),
            nics={
                name: {field: getattr(counters, field) for field, _, _ in _COUNTERS}
                for name, counters in psutil.net_io_counters(pernic=True).items()
                if not any(fnmatchcase(name, pattern) for pattern in cfg.exclude_interfaces)
            },
        )
        document: dict[str, Any] = {
            "totals": {
                field: sum(nic[field] for nic in sample.nics.values()) for field, _, _ in _COUNTERS
            }
        }
        rates = _rates(self._previous, sample)
        self._previous = sample
        if rates is not None:
            document["rates"] = {
                field: sum(nic[field] for nic in rates.values()) for field in _RATES
            }
        if cfg.per_nic:
            document["nics"] = _nics(sample, rates or {})
        connections = _connections()
        if connections is not None:
            document["connections"] = connections
        return document


def _rates(previous: _Sample | None, current: _Sample) -> dict[str, dict[str, float]] | None:
    """Bytes per second of each NIC seen in both samples; None without a usable previous one."""
    if previous is None or current.at <= previous.at:
        return None
    elapsed = current.at - previous.at
    rates: dict[str, dict[str, float]] = {}
    for name, now in current.nics.items():
        before = previous.nics.get(name)
        # A NIC that came, went or had its counters reset (driver reload) has no rate.
        if before is None or any(now[field] < before[field] for field in _RATES):
            continue
        rates[name] = {field: (now[field] - before[field]) / elapsed for field in _RATES}
    return rates


def _nics(sample: _Sample, rates: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    stats = psutil.net_if_stats()
    nics: dict[str, dict[str, Any]] = {}
    for name, counters in sample.nics.items():
        nic: dict[str, Any] = dict(counters)
        if name in stats:
            nic["isup"] = stats[name].isup
            # psutil reports an unknown speed (virtual NICs, Wi-Fi) as 0.
            if stats[name].speed > 0:
                nic["speed"] = stats[name].speed
        if name in rates:
            nic["rates"] = rates[name]
        nics[name] = nic
    return nics


def _connections() -> dict[str, int] | None:
    # Counted from /proc/net where there is one: psutil would first map every
    # socket to its process through every process's descriptors, unused here.
    states = socket_states()
    if states is not None:
        return states
    # macOS, and hardened Linux kernels, deny listing sockets to non-root users;
    # the other metrics are still worth reporting.
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return None
    return dict(Counter(c.status.lower() for c in connections))
