"""The ``ss`` built-in plugin: socket summary and listening sockets of a host.

Runs iproute2's ``ss`` (tested with iproute2 6.1): ``ss -s`` for the summary
(total sockets; TCP established / closed / orphaned / time-wait; the
RAW/UDP/TCP/INET/FRAG table) and ``ss -Htln`` / ``ss -Huln`` (plus ``-p`` for
the owning process) for the listeners. ``ss`` has no machine-readable output
format, so the columns of its stable text output are parsed.
"""

from __future__ import annotations

import re
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

__all__ = ["SsConfig", "SsPlugin"]

_INFO = MetricKind.INFO
_TIMEOUT = 15.0
_TCP_STATES = ("estab", "closed", "orphaned", "timewait")
_TRANSPORTS = {"RAW": "raw", "UDP": "udp", "TCP": "tcp", "INET": "inet", "FRAG": "frag"}
# users:(("nginx",pid=812,fd=6),("nginx",pid=811,fd=6))
_USER = re.compile(r'\("(?P<name>[^"]*)",pid=(?P<pid>\d+)')

_METRICS = [
    MetricField(name="sockets", unit="count", description="Sockets of every kind (ss -s Total)"),
    MetricField(name="tcp.total", unit="count", description="TCP sockets, time-wait included"),
    MetricField(name="tcp.estab", unit="count", description="Established TCP connections"),
    MetricField(name="tcp.closed", unit="count", description="Closed TCP sockets"),
    MetricField(name="tcp.orphaned", unit="count", description="Orphaned TCP sockets"),
    MetricField(name="tcp.timewait", unit="count", description="TCP sockets in time-wait"),
    MetricField(
        name="transport.*.total",
        unit="count",
        description="Sockets per transport (raw, udp, tcp, inet, frag) from the ss -s table",
    ),
    MetricField(name="transport.*.ipv4", unit="count", description="IPv4 sockets per transport"),
    MetricField(name="transport.*.ipv6", unit="count", description="IPv6 sockets per transport"),
    MetricField(
        name="listening.*",
        unit="count",
        description="Listening sockets per protocol (tcp, udp; config listeners)",
    ),
    MetricField(name="listeners.*.protocol", kind=_INFO, description="tcp or udp, per listener"),
    MetricField(
        name="listeners.*.address", kind=_INFO, description="Local address of the listener"
    ),
    MetricField(name="listeners.*.port", kind=_INFO, description="Local port of the listener"),
    MetricField(
        name="listeners.*.process",
        kind=_INFO,
        description="Process names owning the socket (config processes; needs root for "
        "other users' processes)",
    ),
    MetricField(name="listeners.*.pid", kind=_INFO, description="PID of the first owning process"),
    MetricField(
        name="listeners.*.queue",
        unit="count",
        description="TCP: connections waiting to be accepted (Recv-Q)",
    ),
    MetricField(
        name="listeners.*.backlog",
        unit="count",
        description="TCP: the listen backlog, the most connections that can wait (Send-Q)",
    ),
]


class SsConfig(BaseModel):
    """Config of the ``ss`` plugin."""

    model_config = ConfigDict(extra="forbid")

    listeners: bool = Field(
        default=True, description="Also list every listening TCP and UDP socket under listeners."
    )
    processes: bool = Field(
        default=True,
        description="Name the process owning each listener (ss -p); without root only the "
        "processes of the hub's own user are named.",
    )


class SsPlugin(PluginBase[SsConfig]):
    """Reports how many sockets a host has and what listens on which port."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="ss",
            name="Sockets (ss)",
            version="1.0.0",
            description="Socket summary (TCP states, UDP, RAW) and listening TCP/UDP "
            "sockets with their processes, from iproute2's ss.",
            author="Unity developers",
            category=PluginCategory.NETWORK,
            tags=["network", "sockets", "tcp", "udp", "ports", "listeners"],
            config_schema=SsConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["ss"]),
            default_interval=60,
            timeout=30,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        summary = await self.runner.run(["ss", "-s"], timeout=_TIMEOUT)
        document = parse_summary(summary.check().stdout)
        if cfg.listeners:
            flags = "p" if cfg.processes else ""
            listeners: dict[str, dict[str, Any]] = {}
            counts: dict[str, int] = {}
            for protocol in ("tcp", "udp"):
                argv = ["ss", f"-H{protocol[0]}ln{flags}"]
                result = await self.runner.run(argv, timeout=_TIMEOUT)
                found = parse_listeners(result.check().stdout, protocol)
                counts[protocol] = len(found)
                listeners.update(found)
            document["listening"] = counts
            document["listeners"] = listeners
        return document

    async def health_check(self) -> HealthStatus:
        try:
            (await self.runner.run(["ss", "-s"], timeout=_TIMEOUT)).check()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return HealthStatus.healthy()


def parse_summary(text: str) -> dict[str, Any]:
    """The document of ``ss -s`` output."""
    lines = text.splitlines()
    total = _first_int(r"^Total:\s*(\d+)", lines)
    tcp_line = next((line for line in lines if line.startswith("TCP:")), None)
    if total is None or tcp_line is None:
        raise CollectionError(f"ss -s printed no socket summary: {text.strip()[:200]!r}")
    tcp: dict[str, int] = {"total": int(re.findall(r"\d+", tcp_line)[0])}
    for state in _TCP_STATES:
        # Older iproute2 prints "timewait 12/0"; the first number is the count.
        match = re.search(rf"\b{state} (\d+)", tcp_line)
        tcp[state] = int(match.group(1)) if match else 0
    transport: dict[str, dict[str, int]] = {}
    for line in lines:
        fields = line.split()
        if len(fields) == 4 and fields[0] in _TRANSPORTS and all(f.isdigit() for f in fields[1:]):
            count, ipv4, ipv6 = (int(f) for f in fields[1:])
            transport[_TRANSPORTS[fields[0]]] = {"total": count, "ipv4": ipv4, "ipv6": ipv6}
    return {"sockets": total, "tcp": tcp, "transport": transport}


def _first_int(pattern: str, lines: list[str]) -> int | None:
    for line in lines:
        match = re.match(pattern, line)
        if match:
            return int(match.group(1))
    return None


def parse_listeners(text: str, protocol: str) -> dict[str, dict[str, Any]]:
    """Listeners of ``ss -H[t|u]ln[p]`` output, keyed ``address:port/protocol``."""
    listeners: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        # State Recv-Q Send-Q Local:Port Peer:Port [users:(...)]
        fields = line.split(None, 5)
        if len(fields) < 5 or not fields[1].isdigit() or not fields[2].isdigit():
            continue
        address, _, port = fields[3].rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]")
        key = f"{fields[3]}/{protocol}"
        entry: dict[str, Any] = {"protocol": protocol, "address": address, "port": int(port)}
        users = _USER.findall(fields[5]) if len(fields) > 5 else []
        if users:
            entry["process"] = ",".join(dict.fromkeys(name for name, _ in users))
            entry["pid"] = int(users[0][1])
        if protocol == "tcp":
            entry["queue"] = int(fields[1])
            entry["backlog"] = int(fields[2])
        # SO_REUSEPORT lets several sockets share one address; the first stands for all.
        listeners.setdefault(key, entry)
    return listeners
