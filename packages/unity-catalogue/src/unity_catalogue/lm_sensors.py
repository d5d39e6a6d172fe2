"""The ``lm-sensors`` built-in plugin: temperatures, fans and voltages of the hardware monitors.

Parses ``sensors -j`` (lm-sensors 3.5 and later): a JSON object of chips
(``coretemp-isa-0000``), each with an ``Adapter`` string and one object per
feature (``Package id 0``) whose subfeatures are named ``temp1_input``,
``temp1_max``, ``temp1_crit``, ``fan2_input``, ``fan2_min``, ``in0_input``...
A reading above its chip's own ``_max`` (or a fan below its ``_min``) makes
the health (``assess``, after every run) degraded, a temperature at or above
``_crit`` unhealthy. A host without hardware monitors (a VM, a container)
yields an empty document and is not applicable: nothing to monitor.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, field
from typing import Any, TypeGuard

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

__all__ = ["LmSensorsConfig", "LmSensorsPlugin"]

_COMMAND = ["sensors", "-j"]
_TIMEOUT = 15.0

# Subfeature prefix -> (document section, limit subfeatures kept).
_KINDS = {
    "temp": ("temperatures", ("max", "crit")),
    "fan": ("fans", ("min",)),
    "in": ("voltages", ("min", "max")),
}

_METRICS = [
    MetricField(name="chips.*.adapter", kind=MetricKind.INFO, description="Bus of the chip"),
    MetricField(name="chips.*.temperatures.*.input", unit="°C", description="Temperature reading"),
    MetricField(
        name="chips.*.temperatures.*.max", unit="°C", description="High limit set on the chip"
    ),
    MetricField(
        name="chips.*.temperatures.*.crit", unit="°C", description="Critical limit of the chip"
    ),
    MetricField(name="chips.*.fans.*.input", unit="RPM", description="Fan speed"),
    MetricField(name="chips.*.fans.*.min", unit="RPM", description="Low fan speed limit"),
    MetricField(name="chips.*.voltages.*.input", unit="V", description="Voltage reading"),
    MetricField(name="chips.*.voltages.*.min", unit="V", description="Low voltage limit"),
    MetricField(name="chips.*.voltages.*.max", unit="V", description="High voltage limit"),
    MetricField(name="max_temperature", unit="°C", description="Hottest temperature reading"),
    MetricField(name="temperature_count", unit="count", description="Temperature sensors"),
    MetricField(name="fan_count", unit="count", description="Fan sensors"),
    MetricField(name="voltage_count", unit="count", description="Voltage sensors"),
    MetricField(
        name="alarm_count",
        unit="count",
        description="Readings beyond their chip's limits (listed under alarms)",
    ),
]


class LmSensorsConfig(BaseModel):
    """Config of the ``lm-sensors`` plugin."""

    model_config = ConfigDict(extra="forbid")

    ignore: list[str] = Field(
        default_factory=list,
        description="Readings to leave out, as 'chip/feature' shell patterns "
        "(e.g. 'nct6775-*/intrusion*' or '*/AUXTIN*' for unconnected inputs).",
    )


@dataclass
class _Reading:
    """What one ``sensors -j`` run says, ready for the document and the health check."""

    chips: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    critical: list[str] = field(default_factory=list)


class LmSensorsPlugin(PluginBase[LmSensorsConfig]):
    """Reads every hardware monitoring chip the kernel exposes through lm-sensors."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="lm-sensors",
            name="lm-sensors",
            version="1.0.0",
            description="Temperatures, fan speeds and voltages from `sensors -j`, "
            "with alarms when a reading passes the limits its chip reports.",
            author="Unity developers",
            category=PluginCategory.THERMAL,
            tags=["sensors", "temperature", "fans", "voltage", "hardware"],
            config_schema=LmSensorsConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["sensors"]),
            default_interval=30,
            timeout=20,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="temperature-high",
                    metric="chips.*.temperatures.*.input",
                    op=">=",
                    threshold_metric="chips.*.temperatures.*.max",
                    for_seconds=120,
                    summary="{item} on {host} is {value}{unit}, at its high mark {threshold}{unit}",
                ),
                AlertRule(
                    id="temperature-critical",
                    metric="chips.*.temperatures.*.input",
                    op=">=",
                    threshold_metric="chips.*.temperatures.*.crit",
                    severity="critical",
                    summary="{item} on {host}: {value}{unit}, critical mark {threshold}{unit}",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """Hardware monitors (temperatures, fans, voltages), when lm-sensors is installed."""
        if not facts.hwmon or not facts.has("sensors"):
            return []
        return one_proposal(
            cls,
            title="Temperatures, fans and voltages",
            reason=f"Hardware monitors: {', '.join(sorted(set(facts.hwmon)))}.",
        )

    async def collect_data(self) -> dict[str, Any]:
        reading = await self._read()
        temperatures = [
            values["input"]
            for chip in reading.chips.values()
            for values in chip["temperatures"].values()
        ]
        return {
            "chips": reading.chips,
            **({"max_temperature": max(temperatures)} if temperatures else {}),
            "temperature_count": len(temperatures),
            "fan_count": sum(len(chip["fans"]) for chip in reading.chips.values()),
            "voltage_count": sum(len(chip["voltages"]) for chip in reading.chips.values()),
            "alarm_count": len(reading.critical) + len(reading.warnings),
            "alarms": reading.critical + reading.warnings,
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    async def _read(self) -> _Reading:
        cfg = self.config
        result = await self.runner.run(_COMMAND, timeout=_TIMEOUT)
        if not result.ok and "no sensors found" in result.stderr.lower():
            return _Reading()
        result.check()
        try:
            raw = json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise CollectionError(f"sensors -j printed invalid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise CollectionError("sensors -j did not print a JSON object")
        reading = _parse(raw, cfg.ignore)
        if not any(chip["temperatures"] for chip in reading.chips.values()):
            raise DependencyMissingError(
                "sensors reports no temperature sensors; load the kernel drivers (sensors-detect)"
            )
        return reading

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Above a chip's own max: degraded; at or above its critical mark: unhealthy."""
        chips: dict[str, dict[str, Any]] = document["chips"]
        if not chips:
            return HealthStatus.not_applicable(
                "no hardware sensors on this host (sensors-detect finds their drivers, if any)"
            )
        reading = _Reading()
        for chip_name, chip in chips.items():
            for section, _ in _KINDS.values():
                for feature, values in chip[section].items():
                    _judge(reading, f"{chip_name}/{feature}", section, values)
        if reading.critical:
            return HealthStatus.unhealthy(
                "; ".join(reading.critical + reading.warnings), alarms=reading.critical
            )
        if reading.warnings:
            return HealthStatus.degraded("; ".join(reading.warnings), alarms=reading.warnings)
        return HealthStatus.healthy(
            f"{document['temperature_count']} temperature(s) within limits, "
            f"hottest {document['max_temperature']:g} °C"
        )


def _parse(raw: dict[str, Any], ignore: list[str]) -> _Reading:
    reading = _Reading()
    for chip_name, chip in raw.items():
        if not isinstance(chip, dict):
            continue
        sections: dict[str, dict[str, dict[str, float]]] = {
            section: {} for section, _ in _KINDS.values()
        }
        for feature, subfeatures in chip.items():
            if not isinstance(subfeatures, dict) or any(
                fnmatch.fnmatchcase(f"{chip_name}/{feature}", pattern) for pattern in ignore
            ):
                continue
            parsed = _feature(subfeatures)
            if parsed is None:
                continue
            section, values = parsed
            sections[section][feature] = values
            _judge(reading, f"{chip_name}/{feature}", section, values)
        if any(sections.values()):
            adapter = chip.get("Adapter")
            reading.chips[chip_name] = {
                "adapter": adapter if isinstance(adapter, str) else "",
                **sections,
            }
    return reading


def _feature(subfeatures: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """The section and values of one feature, from its ``<kind><n>_<item>`` subfeatures."""
    for key, value in subfeatures.items():
        prefix, _, item = key.partition("_")
        kind = prefix.rstrip("0123456789")
        if item != "input" or kind not in _KINDS or not _is_number(value):
            continue
        section, limits = _KINDS[kind]
        values = {"input": float(value)}
        for limit in limits:
            bound = subfeatures.get(f"{prefix}_{limit}")
            # Chips report 0 for a limit nobody set (nct6775 temp maxima, most fan minima).
            if _is_number(bound) and bound > 0:
                values[limit] = float(bound)
        return section, values
    return None


def _judge(reading: _Reading, name: str, section: str, values: dict[str, float]) -> None:
    value = values["input"]
    if section == "temperatures":
        if "crit" in values and value >= values["crit"]:
            reading.critical.append(f"{name} {value:g} °C at or above critical {values['crit']:g}")
        elif "max" in values and value > values["max"]:
            reading.warnings.append(f"{name} {value:g} °C above max {values['max']:g}")
    elif section == "fans":
        if "min" in values and value < values["min"]:
            reading.warnings.append(f"{name} {value:g} RPM below min {values['min']:g}")
    elif "max" in values and value > values["max"]:
        reading.warnings.append(f"{name} {value:g} V above max {values['max']:g}")


def _is_number(value: Any) -> TypeGuard[float]:
    # json.loads accepts NaN and Infinity; such a reading is not a measurement.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
