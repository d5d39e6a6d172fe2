"""The ``smartctl`` built-in plugin: SMART health of every disk (ATA/SATA, NVMe, SAS).

Parses the JSON output (``-j``, smartmontools 7.0 and later) of
``smartctl --scan -j`` (``devices``: name, type) and, per device,
``smartctl -a -j [-n standby] -d <type> <name>``: ``smart_status.passed``,
``temperature.current``, ``power_on_time.hours``, ``power_cycle_count``, the
ATA attribute table (``ata_smart_attributes.table``: id, name, value,
thresh, ``when_failed``, ``raw.value``) and the NVMe health log
(``nvme_smart_health_information_log``: critical_warning, percentage_used,
available_spare, media_errors). smartctl's exit status is a bit mask
(bit 0 command line, 1 open failed or low-power mode, 2 SMART command failed,
3 disk failing, 4-5 attributes at or below threshold, 6-7 error logs), so the
JSON is read whatever the exit status.

Health (``assess``, after every run): a disk failing SMART (overall health
failed, an attribute failing now, an NVMe critical warning) makes it
unhealthy; reallocated or pending sectors, media errors, heat or an
unreadable disk degraded; a host without SMART disks is not applicable.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    CollectionError,
    DependencyMissingError,
    HealthStatus,
    HostFacts,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Proposal,
    Requirements,
)

from ._proposing import one_proposal

__all__ = ["SmartctlConfig", "SmartctlPlugin"]

_TIMEOUT = 60.0
_BAD_COMMAND_LINE = 1
_OPEN_FAILED = 2
_DENIED = ("permission denied", "operation not permitted")
# Disk names whose drives answer SMART: SCSI/SATA/SAS, NVMe, old IDE (not virtio vd*).
_SMART_DISKS = ("sd", "nvme", "hd")

# ATA attribute id -> document key (raw value).
_ATA_COUNTERS = {
    5: "reallocated_sectors",
    197: "pending_sectors",
    198: "offline_uncorrectable",
    199: "crc_errors",
}
_NVME_FIELDS = {
    "percentage_used": "percentage_used",
    "available_spare": "available_spare",
    "media_errors": "media_errors",
    "critical_warning": "critical_warning",
    "unsafe_shutdowns": "unsafe_shutdowns",
}

_METRICS = [
    MetricField(name="devices.*.model", kind=MetricKind.INFO, description="Model name"),
    MetricField(name="devices.*.serial", kind=MetricKind.INFO, description="Serial number"),
    MetricField(name="devices.*.protocol", kind=MetricKind.INFO, description="ATA, NVMe or SCSI"),
    MetricField(
        name="devices.*.state",
        kind=MetricKind.INFO,
        description="active, standby (skipped, not woken) or error",
    ),
    MetricField(
        name="devices.*.passed",
        unit="bool",
        description="SMART overall health self-assessment passed (1) or failed (0)",
    ),
    MetricField(name="devices.*.temperature", unit="°C", description="Drive temperature"),
    MetricField(
        name="devices.*.power_on_hours",
        unit="h",
        kind=MetricKind.COUNTER,
        description="Power-on time",
    ),
    MetricField(
        name="devices.*.power_cycles",
        unit="count",
        kind=MetricKind.COUNTER,
        description="Power cycles",
    ),
    MetricField(name="devices.*.capacity", unit="bytes", description="User capacity of the device"),
    MetricField(
        name="devices.*.reallocated_sectors",
        unit="count",
        description="ATA attribute 5: sectors remapped to spares",
    ),
    MetricField(
        name="devices.*.pending_sectors",
        unit="count",
        description="ATA attribute 197: unstable sectors waiting to be remapped",
    ),
    MetricField(
        name="devices.*.offline_uncorrectable",
        unit="count",
        description="ATA attribute 198: sectors the offline scan could not read",
    ),
    MetricField(
        name="devices.*.crc_errors",
        unit="count",
        kind=MetricKind.COUNTER,
        description="ATA attribute 199: interface CRC errors (cabling)",
    ),
    MetricField(
        name="devices.*.failing_attributes",
        unit="count",
        description="ATA attributes at or below their threshold now",
    ),
    MetricField(
        name="devices.*.percentage_used",
        unit="%",
        description="NVMe: share of the rated endurance used (may exceed 100)",
    ),
    MetricField(
        name="devices.*.available_spare", unit="%", description="NVMe: spare capacity left"
    ),
    MetricField(
        name="devices.*.media_errors",
        unit="count",
        kind=MetricKind.COUNTER,
        description="NVMe: unrecovered data integrity errors",
    ),
    MetricField(
        name="devices.*.critical_warning",
        unit="bitmask",
        description="NVMe: critical warning bits (0 = none)",
    ),
    MetricField(
        name="devices.*.unsafe_shutdowns",
        unit="count",
        kind=MetricKind.COUNTER,
        description="NVMe: shutdowns without notification",
    ),
    MetricField(name="device_count", unit="count", description="Devices examined"),
    MetricField(name="standby_count", unit="count", description="Devices asleep, not woken"),
    MetricField(name="problem_count", unit="count", description="Devices with a problem"),
]


class SmartctlConfig(BaseModel):
    """Config of the ``smartctl`` plugin."""

    model_config = ConfigDict(extra="forbid")

    devices: list[str] = Field(
        default_factory=list,
        description="Device paths to examine (e.g. /dev/sda); empty examines what "
        "`smartctl --scan` finds.",
    )
    skip_standby: bool = Field(
        default=True,
        description="Leave disks that are spun down asleep (smartctl -n standby) "
        "instead of waking them for a reading.",
    )
    temperature_warn: float = Field(
        default=60.0, gt=0, le=150, description="Degraded when a drive is hotter than this (°C)."
    )
    reallocated_warn: int = Field(
        default=0,
        ge=0,
        description="Degraded when more sectors than this are reallocated (pending "
        "sectors always count).",
    )


class SmartctlPlugin(PluginBase[SmartctlConfig]):
    """Asks every disk for its SMART data through smartctl."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="smartctl",
            name="SMART (smartctl)",
            version="1.0.0",
            description="SMART health, temperature, power-on hours, reallocated and pending "
            "sectors (ATA) and wear and media errors (NVMe) of every disk, via smartctl -j.",
            author="Unity developers",
            category=PluginCategory.STORAGE,
            tags=["smart", "disk", "nvme", "ssd", "hdd", "health"],
            config_schema=SmartctlConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["smartctl"], root=True),
            default_interval=300,
            timeout=120,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="smart-failing",
                    metric="devices.*.passed",
                    op="==",
                    threshold=0,
                    severity="critical",
                    summary="SMART self-assessment of {item} on {host} failed",
                ),
                AlertRule(
                    id="reallocated-sectors-growing",
                    kind="rate",
                    metric="devices.*.reallocated_sectors",
                    threshold=0,
                    unit="count/h",
                    summary="{item} on {host}: reallocated sectors growing ({value} per hour)",
                ),
                AlertRule(
                    id="pending-sectors",
                    metric="devices.*.pending_sectors",
                    threshold=0,
                    summary="{item} on {host}: {value} sectors pending reallocation",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """Disks that speak SMART (SATA, SAS, NVMe), when smartctl is installed."""
        disks = [disk for disk in facts.block_devices if disk.name.startswith(_SMART_DISKS)]
        if not disks or not facts.has("smartctl"):
            return []
        listed = ", ".join(
            f"{disk.name} ({disk.model or 'disk'}, {disk.size_bytes / 1e12:.1f} TB, "
            f"{'HDD' if disk.rotational else 'SSD'})"
            for disk in disks
        )
        access = "" if all(disk.readable for disk in disks) else " smartctl needs root here."
        return one_proposal(
            cls,
            title=f"SMART health of {len(disks)} disk{'s' if len(disks) > 1 else ''}",
            reason=f"Disks: {listed}.{access}",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        targets: list[tuple[str, str | None]] = [(path, None) for path in cfg.devices]
        targets = targets or await self._scan()
        keys = _keys(targets)
        outputs = await asyncio.gather(
            *(self._device(path, kind, cfg.skip_standby) for path, kind in targets)
        )
        devices = {key: _device(data) for key, data in zip(keys, outputs, strict=True)}
        return {
            "devices": devices,
            "device_count": len(devices),
            "standby_count": sum(d["state"] == "standby" for d in devices.values()),
            "problem_count": sum(bool(_problems(d, cfg)) for d in devices.values()),
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    async def _scan(self) -> list[tuple[str, str | None]]:
        result = (await self.runner.run(["smartctl", "--scan", "-j"], timeout=_TIMEOUT)).check()
        scanned = _json(result.stdout, "smartctl --scan -j").get("devices", [])
        return [
            (entry["name"], entry.get("type"))
            for entry in scanned
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        ]

    async def _device(self, path: str, kind: str | None, skip_standby: bool) -> dict[str, Any]:
        argv = ["smartctl", "-a", "-j"]
        if skip_standby:
            argv += ["-n", "standby"]
        if kind:
            argv += ["-d", kind]
        result = await self.runner.run([*argv, path], timeout=_TIMEOUT)
        if result.exit_status in (126, 127) or not result.stdout.strip():
            result.check()
            raise CollectionError(f"smartctl printed nothing for {path}")
        data = _json(result.stdout, f"smartctl -a -j {path}")
        status = data.get("smartctl", {}).get("exit_status", result.exit_status)
        message = _messages(data)
        if status & (_BAD_COMMAND_LINE | _OPEN_FAILED) and any(
            word in message.lower() for word in _DENIED
        ):
            raise DependencyMissingError(f"smartctl: {message} (SMART needs root)")
        return data

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """A disk failing SMART: unhealthy; worn or hot: degraded; no disks: not applicable."""
        cfg = self.config
        devices: dict[str, dict[str, Any]] = document["devices"]
        if not devices:
            return HealthStatus.not_applicable("no SMART disks on this host")
        problems = {key: found for key, d in devices.items() if (found := _problems(d, cfg))}
        failing = sorted(key for key, device in devices.items() if _failing(device))
        listing = "; ".join(f"{key}: {', '.join(found)}" for key, found in problems.items())
        if failing:
            return HealthStatus.unhealthy(listing, failing=failing, devices=sorted(problems))
        if problems:
            return HealthStatus.degraded(listing, devices=sorted(problems))
        asleep = document["standby_count"]
        return HealthStatus.healthy(
            f"{len(devices)} disk(s) pass SMART"
            + (f" ({asleep} asleep, not woken)" if asleep else "")
        )


def _keys(targets: list[tuple[str, str | None]]) -> list[str]:
    """Document keys: the device's base name, with the type where names repeat (RAID ports)."""
    names = [posixpath.basename(path) or path for path, _ in targets]
    return [
        f"{name}-{kind.replace(',', '-')}" if names.count(name) > 1 and kind else name
        for name, (_, kind) in zip(names, targets, strict=True)
    ]


def _json(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CollectionError(f"{what} printed invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CollectionError(f"{what} did not print a JSON object")
    return data


def _messages(data: dict[str, Any]) -> str:
    messages = data.get("smartctl", {}).get("messages", [])
    return "; ".join(m.get("string", "") for m in messages if isinstance(m, dict))


def _device(data: dict[str, Any]) -> dict[str, Any]:
    info = data.get("device", {})
    device: dict[str, Any] = {
        "model": str(data.get("model_name", "")),
        "serial": str(data.get("serial_number", "")),
        "protocol": str(info.get("protocol", "")),
    }
    status = data.get("smartctl", {}).get("exit_status", 0)
    message = _messages(data)
    if "STANDBY" in message or "SLEEP" in message:
        return {**device, "state": "standby"}
    if "smart_status" not in data:
        return {**device, "state": "error", "error": message or f"smartctl exit status {status}"}
    device["state"] = "active"
    device["passed"] = int(bool(data["smart_status"].get("passed")))
    _set(device, "temperature", data.get("temperature", {}).get("current"))
    _set(device, "power_on_hours", data.get("power_on_time", {}).get("hours"))
    _set(device, "power_cycles", data.get("power_cycle_count"))
    _set(device, "capacity", data.get("user_capacity", {}).get("bytes"))
    table = data.get("ata_smart_attributes", {}).get("table")
    if isinstance(table, list):
        failing = [a for a in table if isinstance(a, dict) and a.get("when_failed") == "now"]
        device["failing_attributes"] = len(failing)
        device["failing"] = [str(a.get("name", a.get("id"))) for a in failing]
        for attribute in table:
            if not isinstance(attribute, dict) or not isinstance(attribute.get("id"), int):
                continue
            key = _ATA_COUNTERS.get(attribute["id"])
            if key:
                _set(device, key, attribute.get("raw", {}).get("value"))
    log = data.get("nvme_smart_health_information_log")
    if isinstance(log, dict):
        for source, key in _NVME_FIELDS.items():
            _set(device, key, log.get(source))
    return device


def _set(device: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        device[key] = value


def _failing(device: dict[str, Any]) -> bool:
    """The disk itself says it is failing: replace it."""
    return device["state"] == "active" and bool(
        not device["passed"] or device.get("failing") or device.get("critical_warning", 0)
    )


def _problems(device: dict[str, Any], cfg: SmartctlConfig) -> list[str]:
    if device["state"] == "error":
        return [device["error"]]
    if device["state"] == "standby":
        return []
    problems = []
    if not device["passed"]:
        problems.append("SMART overall health FAILED")
    if device.get("failing"):
        problems.append(f"failing attributes {', '.join(device['failing'])}")
    if device.get("reallocated_sectors", 0) > cfg.reallocated_warn:
        problems.append(f"{device['reallocated_sectors']} reallocated sectors")
    if device.get("pending_sectors", 0) > 0:
        problems.append(f"{device['pending_sectors']} pending sectors")
    if device.get("critical_warning", 0):
        problems.append(f"NVMe critical warning 0x{device['critical_warning']:02x}")
    if device.get("media_errors", 0) > 0:
        problems.append(f"{device['media_errors']} NVMe media errors")
    if device.get("temperature", 0) > cfg.temperature_warn:
        problems.append(f"{device['temperature']} °C")
    return problems
