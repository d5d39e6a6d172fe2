"""The ``iperf3`` built-in plugin: network throughput to a configured iperf3 server.

Runs ``iperf3 -c <server> -p <port> -t <seconds> -J`` (plus ``-R`` for the
download direction, ``-u -b <bitrate>`` for UDP) and reads its JSON report
(tested with iperf3 3.12): ``end.sum_sent`` / ``end.sum_received`` for bits per
second and bytes of both sides, TCP retransmits, and for UDP the jitter and loss
the receiver saw (``end.sum``). iperf3 reports its own failures, such as
"unable to connect to server", in the JSON ``error`` field -- with exit status 0
in 3.12 -- so the plugin reads that field whatever the exit status.
"""

from __future__ import annotations

import json
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
    PluginNotReadyError,
    Requirements,
)

__all__ = ["Iperf3Config", "Iperf3Plugin"]

_INFO = MetricKind.INFO
# Connecting and exchanging results take a few seconds on top of the test itself.
_SLACK = 20.0
# iperf3's errors that mean "the server is not there or not free", so retry later.
_NOT_READY = ("unable to connect", "server is busy", "connection refused", "no route to host")

_METRICS = [
    MetricField(name="protocol", kind=_INFO, description="tcp or udp"),
    MetricField(
        name="direction",
        kind=_INFO,
        description="upload (this host sends) or download (the server sends; config reverse)",
    ),
    MetricField(name="server", kind=_INFO, description="The iperf3 server measured against"),
    MetricField(name="seconds", unit="s", description="Length of the measurement"),
    MetricField(
        name="sender.bits_per_second", unit="bit/s", description="Throughput the sender achieved"
    ),
    MetricField(name="sender.bytes", unit="bytes", description="Bytes the sender sent"),
    MetricField(
        name="receiver.bits_per_second",
        unit="bit/s",
        description="Throughput the receiver saw: the usable bandwidth",
    ),
    MetricField(name="receiver.bytes", unit="bytes", description="Bytes the receiver got"),
    MetricField(
        name="cpu.local", unit="%", description="CPU use of this host's iperf3 during the test"
    ),
    MetricField(
        name="cpu.remote", unit="%", description="CPU use of the server's iperf3 during the test"
    ),
    MetricField(
        name="transport.*.retransmits",
        unit="count",
        description="TCP: segments the sender retransmitted (Linux senders only)",
    ),
    MetricField(
        name="transport.*.jitter_ms", unit="ms", description="UDP: jitter the receiver saw"
    ),
    MetricField(name="transport.*.lost_packets", unit="count", description="UDP: datagrams lost"),
    MetricField(name="transport.*.lost_percent", unit="%", description="UDP: share lost"),
    MetricField(name="transport.*.packets", unit="count", description="UDP: datagrams sent"),
]


class Iperf3Config(BaseModel):
    """Config of the ``iperf3`` plugin."""

    model_config = ConfigDict(extra="forbid")

    server: str = Field(
        min_length=1, description="Host name or address of the iperf3 server (iperf3 -s)."
    )
    port: int = Field(default=5201, ge=1, le=65535, description="Port of the iperf3 server.")
    duration: int = Field(
        default=5, ge=1, le=30, description="Seconds each measurement sends data."
    )
    reverse: bool = Field(
        default=False,
        description="Measure the download direction: the server sends to this host (-R).",
    )
    udp: bool = Field(
        default=False, description="Measure with UDP (jitter and loss) instead of TCP."
    )
    bitrate: str | None = Field(
        default=None,
        pattern=r"^\d+(\.\d+)?[KMG]?$",
        description="UDP target bitrate, e.g. 100M (iperf3 -b); empty uses iperf3's 1M.",
    )


class Iperf3Plugin(PluginBase[Iperf3Config]):
    """Measures the throughput between this host and an iperf3 server."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_error: str | None = None

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="iperf3",
            name="Throughput (iperf3)",
            version="1.0.0",
            description="TCP or UDP throughput to a configured iperf3 server: bits per "
            "second of sender and receiver, TCP retransmits, UDP jitter and loss.",
            author="Unity developers",
            category=PluginCategory.NETWORK,
            tags=["network", "throughput", "bandwidth", "iperf3", "speed"],
            config_schema=Iperf3Config,
            metrics=_METRICS,
            requires=Requirements(commands=["iperf3"]),
            default_interval=3600,
            timeout=60,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        try:
            document = await self._measure(cfg)
        except PluginError as exc:
            self._last_error = str(exc)
            raise
        self._last_error = None
        return document

    async def health_check(self) -> HealthStatus:
        """Whether iperf3 runs and the last measurement worked (a check runs no test)."""
        try:
            (await self.runner.run(["iperf3", "--version"], timeout=10)).check()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        if self._last_error is not None:
            return HealthStatus.unhealthy(f"last measurement failed: {self._last_error}")
        return HealthStatus.healthy()

    async def _measure(self, cfg: Iperf3Config) -> dict[str, Any]:
        argv = ["iperf3", "-c", cfg.server, "-p", str(cfg.port), "-t", str(cfg.duration), "-J"]
        if cfg.reverse:
            argv.append("-R")
        if cfg.udp:
            argv.append("-u")
            if cfg.bitrate:
                argv += ["-b", cfg.bitrate]
        result = await self.runner.run(argv, timeout=cfg.duration + _SLACK)
        if result.exit_status in (126, 127):
            result.check()
        try:
            report = json.loads(result.stdout)
        except ValueError:
            result.check()
            raise CollectionError(
                f"iperf3 printed no JSON report: {result.stdout.strip()[:200]!r}"
            ) from None
        return parse_report(report, server=cfg.server, reverse=cfg.reverse)


def parse_report(report: Any, *, server: str, reverse: bool) -> dict[str, Any]:
    """The document of one ``iperf3 -J`` report; SDK errors for a failed test."""
    if not isinstance(report, dict):
        raise CollectionError("iperf3 printed JSON that is not a report")
    error = report.get("error")
    if error:
        message = f"iperf3 to {server}: {error}"
        if any(marker in str(error).lower() for marker in _NOT_READY):
            raise PluginNotReadyError(message)
        raise CollectionError(message)
    end = report.get("end") or {}
    protocol = str(report.get("start", {}).get("test_start", {}).get("protocol", "TCP")).lower()
    # UDP: "sum" is the receiver's view (jitter, loss); old iperf3 has no sum_sent/sum_received.
    sent = end.get("sum_sent") or end.get("sum")
    received = end.get("sum_received") or end.get("sum")
    if not isinstance(sent, dict) or not isinstance(received, dict):
        raise CollectionError("iperf3 report has no end.sum_sent / end.sum_received")
    cpu = end.get("cpu_utilization_percent") or {}
    document: dict[str, Any] = {
        "protocol": protocol,
        "direction": "download" if reverse else "upload",
        "server": server,
        "seconds": float(received.get("seconds") or sent.get("seconds") or 0.0),
        "sender": {
            "bits_per_second": float(sent.get("bits_per_second", 0.0)),
            "bytes": int(sent.get("bytes", 0)),
        },
        "receiver": {
            "bits_per_second": float(received.get("bits_per_second", 0.0)),
            "bytes": int(received.get("bytes", 0)),
        },
        "cpu": {
            "local": float(cpu.get("host_total", 0.0)),
            "remote": float(cpu.get("remote_total", 0.0)),
        },
    }
    if protocol == "udp":
        summed = end.get("sum")
        loss: dict[str, Any] = summed if isinstance(summed, dict) else received
        document["transport"] = {
            "udp": {
                "jitter_ms": float(loss.get("jitter_ms", 0.0)),
                "lost_packets": int(loss.get("lost_packets", 0)),
                "lost_percent": float(loss.get("lost_percent", 0.0)),
                "packets": int(loss.get("packets", 0)),
            }
        }
    elif "retransmits" in sent:
        document["transport"] = {"tcp": {"retransmits": int(sent["retransmits"])}}
    return document
