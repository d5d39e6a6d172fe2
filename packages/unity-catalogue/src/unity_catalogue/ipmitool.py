"""The ``ipmitool`` built-in plugin: BMC sensors, chassis power state and the event log.

Parses three outputs of ipmitool 1.8 (the in-band ``open`` interface, i.e.
``/dev/ipmi0`` of the target host):

* ``ipmitool sensor list``: one ``|``-separated line per sensor -- name,
  reading, unit, status (``ok``, ``nc``, ``cr``, ``nr``, ``na``), then the
  lower non-recoverable / critical / non-critical and upper non-critical /
  critical / non-recoverable thresholds, ``na`` where unset;
* ``ipmitool chassis status``: ``Key : value`` lines;
* ``ipmitool sel elist``: ``id | date | time | sensor | event | Asserted``
  lines, or ``SEL has no entries``.

A sensor in ``nc`` state (past the BMC's own non-critical threshold) or a
chassis fault makes the health (``assess``, after every run) degraded, a
sensor in ``cr``/``nr`` unhealthy. Without an IPMI device the firmware's
tables (SMBIOS type 38, ACPI SPMI) tell a host without a BMC -- nothing to
monitor, an empty document, not applicable -- from one whose kernel modules
are missing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    DependencyMissingError,
    HealthStatus,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Requirements,
)

__all__ = ["IpmitoolConfig", "IpmitoolPlugin"]

_TIMEOUT = 60.0

# ipmitool's unit string -> (document section, unit).
_SECTIONS = {
    "degrees C": ("temperatures", "°C"),
    "RPM": ("fans", "RPM"),
    "Volts": ("voltages", "V"),
    "Watts": ("power", "W"),
    "Amps": ("currents", "A"),
    "percent": ("percent", "%"),
}
_THRESHOLDS = (
    "lower_non_recoverable",
    "lower_critical",
    "lower_non_critical",
    "upper_non_critical",
    "upper_critical",
    "upper_non_recoverable",
)
_BAD_STATES = {"nc": "non-critical", "cr": "critical", "nr": "non-recoverable"}

# chassis status key -> (document key, the value that means 1).
_CHASSIS_FLAGS = {
    "System Power": ("power_on", "on"),
    "Power Overload": ("power_overload", "true"),
    "Main Power Fault": ("main_power_fault", "true"),
    "Power Control Fault": ("power_control_fault", "true"),
    "Drive Fault": ("drive_fault", "true"),
    "Cooling/Fan Fault": ("cooling_fault", "true"),
    "Chassis Intrusion": ("intrusion", "active"),
}
_FAULTS = ("power_overload", "main_power_fault", "power_control_fault", "drive_fault")
# Where the firmware declares a BMC, if the host has one (what ipmi_si probes).
_BMC_TABLES = ("/sys/firmware/dmi/entries/38-0", "/sys/firmware/acpi/tables/SPMI")
_CRITICAL_EVENT = re.compile(
    r"(?<!non-)critical|non-recoverable|fail|fault|uncorrectable|ac lost|redundancy lost",
    re.IGNORECASE,
)


class _NoBmc(Exception):
    """The host has no BMC: nothing to monitor, so no error of the plugin."""


def _metrics() -> list[MetricField]:
    metrics: list[MetricField] = []
    for section, unit in _SECTIONS.values():
        metrics.append(
            MetricField(name=f"{section}.*.value", unit=unit, description=f"Reading ({section})")
        )
        metrics.append(
            MetricField(
                name=f"{section}.*.status",
                kind=MetricKind.INFO,
                description="ok, nc (non-critical), cr (critical), nr (non-recoverable)",
            )
        )
        metrics.extend(
            MetricField(
                name=f"{section}.*.{threshold}",
                unit=unit,
                description=f"{threshold.replace('_', ' ').capitalize()} threshold of the BMC",
            )
            for threshold in _THRESHOLDS
        )
    metrics += [
        MetricField(
            name="discrete.*.state", kind=MetricKind.INFO, description="Discrete sensor state"
        ),
        MetricField(name="sensor_count", unit="count", description="Sensors with a reading"),
        MetricField(
            name="sensors_not_ok", unit="count", description="Sensors in nc, cr or nr state"
        ),
        *(
            MetricField(
                name=f"chassis.{key}", unit="bool", description=f"Chassis: {label} (1 = yes)"
            )
            for label, (key, _) in _CHASSIS_FLAGS.items()
        ),
        MetricField(
            name="chassis.power_restore_policy",
            kind=MetricKind.INFO,
            description="What the BMC does when power returns",
        ),
        MetricField(name="sel.entries", unit="count", description="Entries in the event log"),
        MetricField(
            name="sel.critical",
            unit="count",
            description="Asserted critical / failure events in the event log",
        ),
    ]
    return metrics


class IpmitoolConfig(BaseModel):
    """Config of the ``ipmitool`` plugin."""

    model_config = ConfigDict(extra="forbid")

    recent_events: int = Field(
        default=5, ge=0, le=100, description="How many of the newest events to include."
    )


class IpmitoolPlugin(PluginBase[IpmitoolConfig]):
    """Reads the baseboard management controller through the host's IPMI device."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="ipmitool",
            name="IPMI (ipmitool)",
            version="1.0.0",
            description="BMC sensors with their thresholds, chassis power and fault flags, "
            "and the system event log, from ipmitool on the host's IPMI device.",
            author="Unity developers",
            category=PluginCategory.POWER,
            tags=["ipmi", "bmc", "sensors", "power", "hardware", "server"],
            config_schema=IpmitoolConfig,
            metrics=_metrics(),
            requires=Requirements(commands=["ipmitool"], root=True),
            default_interval=120,
            timeout=150,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        try:
            document = _sensors(await self._ipmitool("sensor", "list"))
        except _NoBmc:
            return _sensors("")
        document["chassis"] = _chassis(await self._ipmitool("chassis", "status"))
        document["sel"] = _events(await self._ipmitool("sel", "elist"), cfg.recent_events)
        return document

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    async def _ipmitool(self, *args: str) -> str:
        result = await self.runner.run(["ipmitool", *args], timeout=_TIMEOUT)
        if not result.ok and "could not open device" in result.stderr.lower():
            if "permission denied" in result.stderr.lower():
                raise DependencyMissingError(
                    "ipmitool: permission denied on /dev/ipmi0 (run as root)"
                )
            if not await self._bmc_declared():
                raise _NoBmc
            raise DependencyMissingError(
                "ipmitool could not open /dev/ipmi0, but the firmware declares a BMC: "
                "load the ipmi_si and ipmi_devintf kernel modules"
            )
        return result.check().stdout

    async def _bmc_declared(self) -> bool:
        for table in _BMC_TABLES:
            if (await self.runner.run(["test", "-e", table], timeout=_TIMEOUT)).ok:
                return True
        return False

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Past a non-critical threshold or a chassis fault: degraded; critical: unhealthy."""
        if "chassis" not in document:
            return HealthStatus.not_applicable(
                "no BMC on this host (no IPMI device, none declared)"
            )
        worst: dict[str, list[str]] = {"nc": [], "cr": [], "nr": []}
        for section, unit in _SECTIONS.values():
            for name, sensor in document[section].items():
                if sensor["status"] in worst:
                    worst[sensor["status"]].append(f"{name} {sensor['value']:g} {unit}")
        faults = [key for key in (*_FAULTS, "cooling_fault") if document["chassis"].get(key) == 1]
        problems = [
            f"{_BAD_STATES[state]}: {', '.join(names)}" for state, names in worst.items() if names
        ]
        if faults:
            problems.append(f"chassis fault: {', '.join(faults)}")
        if worst["cr"] or worst["nr"]:
            return HealthStatus.unhealthy("; ".join(problems), sensors=worst)
        if problems:
            return HealthStatus.degraded("; ".join(problems), sensors=worst)
        return HealthStatus.healthy(f"{document['sensor_count']} sensor(s) within thresholds")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _sensors(output: str) -> dict[str, Any]:
    document: dict[str, Any] = {section: {} for section, _ in _SECTIONS.values()}
    document["discrete"] = {}
    count = not_ok = 0
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 4 or not cells[0]:
            continue
        name, reading, unit, status = cells[:4]
        if unit == "discrete":
            document["discrete"][_unique(document["discrete"], name)] = {"state": status}
            continue
        value = _number(reading)
        if unit not in _SECTIONS or value is None:
            continue
        section = document[_SECTIONS[unit][0]]
        sensor: dict[str, Any] = {"value": value, "status": status}
        for key, cell in zip(_THRESHOLDS, cells[4:10], strict=False):
            threshold = _number(cell)
            if threshold is not None:
                sensor[key] = threshold
        section[_unique(section, name)] = sensor
        count += 1
        not_ok += status in _BAD_STATES
    document["sensor_count"] = count
    document["sensors_not_ok"] = not_ok
    return document


def _unique(section: dict[str, Any], name: str) -> str:
    # Dell BMCs name both CPU temperatures "Temp"; keep both.
    if name not in section:
        return name
    number = 2
    while f"{name} #{number}" in section:
        number += 1
    return f"{name} #{number}"


def _chassis(output: str) -> dict[str, Any]:
    chassis: dict[str, Any] = {key: 0 for key, _ in _CHASSIS_FLAGS.values()}
    chassis["power_restore_policy"] = ""
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key in _CHASSIS_FLAGS:
            name, yes = _CHASSIS_FLAGS[key]
            chassis[name] = int(value.lower() == yes)
        elif key == "Power Restore Policy":
            chassis["power_restore_policy"] = value
        elif key == "Last Power Event":
            chassis["last_power_event"] = value
    return chassis


def _events(output: str, recent: int) -> dict[str, Any]:
    events: list[dict[str, str]] = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 6:
            continue
        event = {
            "id": cells[0],
            "date": cells[1],
            "time": cells[2],
            "sensor": cells[3],
            "event": cells[4],
            "direction": cells[5],
        }
        if len(cells) > 6:
            event["detail"] = " | ".join(cells[6:])
        events.append(event)
    critical = [
        e for e in events if e["direction"] == "Asserted" and _CRITICAL_EVENT.search(e["event"])
    ]
    return {
        "entries": len(events),
        "critical": len(critical),
        "recent": events[-recent:] if recent else [],
    }
