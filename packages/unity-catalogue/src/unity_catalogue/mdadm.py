"""The ``mdadm`` built-in plugin: Linux software RAID arrays, their devices and rebuilds.

Parses ``/proc/mdstat`` (md driver of Linux 2.6 to 6.x) -- per array a line
``md0 : active raid1 sdb1[1] sda1[0](F)``, a line with the size in 1 KiB
blocks and ``[n/m] [UU_]``, and optionally a progress line
``recovery = 27.4% (...) finish=301.5min speed=156732K/sec`` -- and, per
array, ``mdadm --detail /dev/mdX`` (mdadm 4.x): ``Key : value`` lines
(``State : clean, degraded, recovering``, ``Active Devices``, ``Failed
Devices``, ``Spare Devices``, ``Rebuild Status``). A missing /proc/mdstat
means the md driver is not loaded, so there are no arrays.

Health (``assess``, after every run): a degraded array or a failed member
makes it degraded, an inactive or failed array unhealthy; a host without
arrays is not applicable (nothing to monitor).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
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

__all__ = ["MdadmConfig", "MdadmPlugin"]

_TIMEOUT = 20.0
_ARRAY = re.compile(r"^(md\S*)\s*:\s*(.*)$")
_MEMBER = re.compile(r"^(\S+)\[(\d+)\]((?:\([A-Z]\))*)$")
_COUNTS = re.compile(r"\[(\d+)/(\d+)\]\s*\[([U_]+)\]")
_PROGRESS = re.compile(
    r"(resync|recovery|check|reshape|repair)\s*=\s*([\d.]+)%"
    r"(?:.*?finish=([\d.]+)min)?(?:.*?speed=(\d+)K/sec)?"
)
_WAITING = re.compile(r"(resync|recovery|check|reshape|repair)\s*=\s*(DELAYED|PENDING)")
_ROLES = {"F": "faulty", "S": "spare", "W": "write-mostly", "R": "replacement"}
_DETAIL_COUNTS = {
    "Raid Devices": "devices",
    "Active Devices": "active_devices",
    "Working Devices": "working_devices",
    "Failed Devices": "failed_devices",
    "Spare Devices": "spare_devices",
}

_METRICS = [
    MetricField(name="arrays.*.state", kind=MetricKind.INFO, description="active or inactive"),
    MetricField(name="arrays.*.level", kind=MetricKind.INFO, description="RAID level"),
    MetricField(
        name="arrays.*.detail_state",
        kind=MetricKind.INFO,
        description="mdadm --detail state (clean, degraded, recovering...)",
    ),
    MetricField(name="arrays.*.size", unit="bytes", description="Array size"),
    MetricField(name="arrays.*.devices", unit="count", description="Devices the array needs"),
    MetricField(
        name="arrays.*.active_devices", unit="count", description="Devices in sync and in use"
    ),
    MetricField(
        name="arrays.*.working_devices", unit="count", description="Active plus spare devices"
    ),
    MetricField(name="arrays.*.failed_devices", unit="count", description="Faulty devices"),
    MetricField(name="arrays.*.spare_devices", unit="count", description="Spare devices"),
    MetricField(name="arrays.*.degraded", unit="bool", description="1 while devices are missing"),
    MetricField(
        name="arrays.*.sync_action",
        kind=MetricKind.INFO,
        description="resync, recovery, check, reshape or repair while one runs",
    ),
    MetricField(name="arrays.*.sync_progress", unit="%", description="Progress of the sync"),
    MetricField(name="arrays.*.sync_finish", unit="min", description="Estimated minutes to finish"),
    MetricField(name="arrays.*.sync_speed", unit="KiB/s", description="Sync speed"),
    MetricField(name="arrays.*.members.*", kind=MetricKind.INFO, description="Member role"),
    MetricField(name="array_count", unit="count", description="md arrays"),
    MetricField(name="degraded_count", unit="count", description="Degraded or failed arrays"),
]


class MdadmConfig(BaseModel):
    """Config of the ``mdadm`` plugin."""

    model_config = ConfigDict(extra="forbid")

    detail: bool = Field(
        default=True,
        description="Also run `mdadm --detail` per array (needs root); off reads "
        "/proc/mdstat only.",
    )


class MdadmPlugin(PluginBase[MdadmConfig]):
    """Reports the host's md RAID arrays."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="mdadm",
            name="Software RAID (mdadm)",
            version="1.0.0",
            description="Linux md RAID arrays from /proc/mdstat and mdadm --detail: level, "
            "state, active/failed/spare devices and resync or rebuild progress.",
            author="Unity developers",
            category=PluginCategory.STORAGE,
            tags=["raid", "mdadm", "md", "storage"],
            config_schema=MdadmConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["cat", "mdadm"]),
            default_interval=60,
            timeout=60,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="md-degraded",
                    metric="arrays.*.degraded",
                    op="==",
                    threshold=1,
                    severity="critical",
                    summary="md array {item} on {host} is degraded",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """Linux software RAID arrays; ``mdadm --detail`` only where it can run."""
        arrays = facts.md_arrays
        if not arrays:
            return []
        detail = facts.has("mdadm") and all(array.readable for array in arrays)
        listed = ", ".join(
            f"{a.name} ({a.level or a.state}, {len(a.devices)} devices)" for a in arrays
        )
        return one_proposal(
            cls,
            title=f"Software RAID: {len(arrays)} md array{'s' if len(arrays) > 1 else ''}",
            reason=f"/proc/mdstat lists {listed}."
            + ("" if detail else " Without root (or mdadm) only /proc/mdstat is read."),
            config={"detail": detail},
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        result = await self.runner.run(["cat", "/proc/mdstat"], timeout=_TIMEOUT)
        if not result.ok and "no such file" in result.stderr.lower():
            arrays: dict[str, dict[str, Any]] = {}
        else:
            arrays = _mdstat(result.check().stdout)
        if cfg.detail:
            for name, array in arrays.items():
                array.update(await self._detail(name))
        for array in arrays.values():
            array["degraded"] = int(_degraded(array))
        return {
            "arrays": arrays,
            "array_count": len(arrays),
            "degraded_count": sum(array["degraded"] for array in arrays.values()),
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    async def _detail(self, name: str) -> dict[str, Any]:
        result = await self.runner.run(["mdadm", "--detail", f"/dev/{name}"], timeout=_TIMEOUT)
        if not result.ok and "permission denied" in result.stderr.lower():
            raise DependencyMissingError(
                f"mdadm --detail /dev/{name}: permission denied (run as root or set detail: false)"
            )
        return _detail(result.check().stdout)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Degraded arrays: degraded; inactive or failed ones: unhealthy; none: not applicable."""
        arrays: dict[str, dict[str, Any]] = document["arrays"]
        if not arrays:
            return HealthStatus.not_applicable("no md RAID arrays on this host")
        failed = sorted(
            name
            for name, array in arrays.items()
            if array["state"] == "inactive" or "FAILED" in array.get("detail_state", "").upper()
        )
        problems = {name: _describe(name, a) for name, a in arrays.items() if a["degraded"]}
        if failed:
            return HealthStatus.unhealthy("; ".join(problems.values()), arrays=failed)
        if problems:
            return HealthStatus.degraded("; ".join(problems.values()), arrays=sorted(problems))
        levels = ", ".join(f"{name} {a['level'] or a['state']}" for name, a in arrays.items())
        return HealthStatus.healthy(f"{len(arrays)} array(s) fine: {levels}")


def _mdstat(text: str) -> dict[str, dict[str, Any]]:
    arrays: dict[str, dict[str, Any]] = {}
    array: dict[str, Any] | None = None
    for line in text.splitlines():
        match = _ARRAY.match(line)
        if match:
            array = arrays[match[1]] = _array_line(match[2].split())
            continue
        if not line.strip():
            array = None
        if array is None:
            continue
        blocks = re.match(r"\s*(\d+) blocks", line)
        if blocks:
            array["size"] = int(blocks[1]) * 1024
        counts = _COUNTS.search(line)
        if counts:
            array["devices"] = int(counts[1])
            array["active_devices"] = int(counts[2])
        progress = _PROGRESS.search(line)
        if progress:
            array["sync_action"] = progress[1]
            array["sync_progress"] = float(progress[2])
            if progress[3]:
                array["sync_finish"] = float(progress[3])
            if progress[4]:
                array["sync_speed"] = int(progress[4])
        waiting = _WAITING.search(line)
        if waiting:
            array["sync_action"] = f"{waiting[1]} ({waiting[2].lower()})"
    return arrays


def _array_line(tokens: list[str]) -> dict[str, Any]:
    array: dict[str, Any] = {"state": tokens[0] if tokens else "", "level": "", "members": {}}
    for token in tokens[1:]:
        member = _MEMBER.match(token)
        if member:
            flags = re.findall(r"\(([A-Z])\)", member[3])
            array["members"][member[1]] = _ROLES.get(flags[0], "active") if flags else "active"
        elif not token.startswith("(") and not array["level"]:
            array["level"] = token
    roles = list(array["members"].values())
    array["failed_devices"] = roles.count("faulty")
    array["spare_devices"] = roles.count("spare")
    return array


def _detail(text: str) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" : ")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key in _DETAIL_COUNTS and value.isdigit():
            detail[_DETAIL_COUNTS[key]] = int(value)
        elif key == "State":
            detail["detail_state"] = value
        elif key in ("Rebuild Status", "Resync Status", "Reshape Status", "Check Status"):
            percent = re.match(r"(\d+)% complete", value)
            if percent:
                detail["sync_progress"] = float(percent[1])
    return detail


def _degraded(array: dict[str, Any]) -> bool:
    missing = array.get("active_devices", 0) < array.get("devices", 0)
    state = array.get("detail_state", "")
    return (
        missing
        or array["failed_devices"] > 0
        or array["state"] == "inactive"
        or "degraded" in state
        or "FAILED" in state.upper()
    )


def _describe(name: str, array: dict[str, Any]) -> str:
    parts = [f"{name} ({array['level'] or array['state']})"]
    if "devices" in array:
        parts.append(f"{array.get('active_devices', 0)}/{array['devices']} devices active")
    if array["failed_devices"]:
        faulty = [m for m, role in array["members"].items() if role == "faulty"]
        parts.append(f"failed: {', '.join(faulty) or array['failed_devices']}")
    if array.get("detail_state"):
        parts.append(array["detail_state"])
    if array.get("sync_action"):
        progress = array.get("sync_progress")
        parts.append(array["sync_action"] + (f" {progress:g}%" if progress is not None else ""))
    return parts[0] + (": " + ", ".join(parts[1:]) if parts[1:] else "")
