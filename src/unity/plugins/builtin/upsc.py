"""The ``upsc`` built-in plugin: a UPS through Network UPS Tools (charge, runtime, load, status).

Runs ``upsc <ups>@<host>[:<port>]`` (NUT 2.7 / 2.8), which prints the UPS's
variables as ``name: value`` lines (``battery.charge: 100``,
``battery.runtime: 2810``, ``ups.load: 18``, ``input.voltage: 232.0``,
``ups.status: OL CHRG``), and decodes the ``ups.status`` flags of the NUT
developer guide (OL on line, OB on battery, LB low battery, CHRG charging,
RB replace battery, OVER overload, FSD forced shutdown...). upsd's errors
come on stderr as ``Error: Data stale``, ``Error: Driver not connected``,
``Error: Unknown UPS`` or ``Error: Connection failure: ...``.

On battery, replace-battery or overload make the health check degraded; low
battery or forced shutdown make it unhealthy.
"""

from __future__ import annotations

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
from unity_sdk.alerts import AlertRule

__all__ = ["UpscConfig", "UpscPlugin"]

_TIMEOUT = 15.0
_DEFAULT_PORT = 3493

# ups.status flag -> readable name (NUT developer guide, "Status data").
_FLAGS = {
    "OL": "online",
    "OB": "on_battery",
    "LB": "low_battery",
    "HB": "high_battery",
    "RB": "replace_battery",
    "CHRG": "charging",
    "DISCHRG": "discharging",
    "BYPASS": "bypass",
    "CAL": "calibrating",
    "OFF": "offline",
    "OVER": "overloaded",
    "TRIM": "trimming",
    "BOOST": "boosting",
    "FSD": "forced_shutdown",
    "ALARM": "alarm",
}
# Flags reported as 0/1 gauges.
_GAUGE_FLAGS = ("OL", "OB", "LB", "CHRG", "RB", "OVER")
_DEGRADING = ("OB", "RB", "OVER", "ALARM")
_FAILING = ("LB", "FSD")

# NUT variable -> (document key, unit, description).
_VARIABLES = {
    "battery.charge": ("battery_charge", "%", "Battery charge"),
    "battery.runtime": ("battery_runtime", "s", "Runtime left on battery"),
    "battery.voltage": ("battery_voltage", "V", "Battery voltage"),
    "ups.load": ("load", "%", "Load as a share of the UPS's capacity"),
    "ups.realpower": ("real_power", "W", "Real power drawn"),
    "ups.realpower.nominal": ("nominal_power", "W", "Nominal real power of the UPS"),
    "input.voltage": ("input_voltage", "V", "Input (mains) voltage"),
    "input.frequency": ("input_frequency", "Hz", "Input (mains) frequency"),
    "output.voltage": ("output_voltage", "V", "Output voltage"),
    "ups.temperature": ("temperature", "°C", "UPS temperature"),
}
_TEXT = {
    "device.mfr": "manufacturer",
    "device.model": "model",
    "ups.mfr": "manufacturer",
    "ups.model": "model",
    "driver.name": "driver",
}

_METRICS = [
    *(
        MetricField(name=f"ups.*.{key}", unit=unit, description=description)
        for key, unit, description in _VARIABLES.values()
    ),
    *(
        MetricField(
            name=f"ups.*.{_FLAGS[flag]}", unit="bool", description=f"Status flag {flag} (1 = set)"
        )
        for flag in _GAUGE_FLAGS
    ),
    MetricField(name="ups.*.status", kind=MetricKind.INFO, description="Raw ups.status"),
    MetricField(name="ups.*.model", kind=MetricKind.INFO, description="UPS model"),
    MetricField(name="ups.*.manufacturer", kind=MetricKind.INFO, description="Manufacturer"),
    MetricField(name="ups.*.driver", kind=MetricKind.INFO, description="NUT driver"),
]


class UpscConfig(BaseModel):
    """Config of the ``upsc`` plugin."""

    model_config = ConfigDict(extra="forbid")

    ups: str = Field(
        default="ups",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Name of the UPS in upsd's ups.conf.",
    )
    host: str = Field(
        default="localhost",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.:\[\]-]+$",
        description="Host running upsd, as seen from the target the plugin runs on.",
    )
    port: int = Field(default=_DEFAULT_PORT, ge=1, le=65535, description="upsd's TCP port.")


class UpscPlugin(PluginBase):
    """Reads one UPS from upsd with NUT's upsc client."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="upsc",
            name="UPS (NUT upsc)",
            version="1.0.0",
            description="Battery charge and runtime, load, voltages and the decoded status "
            "flags (on line, on battery, low battery, charging...) of a UPS served by NUT.",
            author="Unity developers",
            category=PluginCategory.POWER,
            tags=["ups", "nut", "upsc", "battery", "power"],
            config_schema=UpscConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["upsc"]),
            default_interval=30,
            timeout=30,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="ups-on-battery",
                    metric="ups.*.on_battery",
                    op="==",
                    threshold=1,
                    summary="UPS {item} on {host} is on battery",
                ),
                AlertRule(
                    id="ups-runtime-low",
                    metric="ups.*.battery_runtime",
                    op="<",
                    threshold=600,
                    clear=900,
                    severity="critical",
                    summary="UPS {item} on {host}: {value} s of runtime left (limit {threshold} s)",
                ),
                AlertRule(
                    id="ups-low-battery",
                    metric="ups.*.low_battery",
                    op="==",
                    threshold=1,
                    severity="critical",
                    summary="UPS {item} on {host} reports a low battery",
                ),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = UpscConfig.model_validate(self.config)
        return {"ups": {cfg.ups: await self._read(cfg)}}

    async def health_check(self) -> HealthStatus:
        cfg = UpscConfig.model_validate(self.config)
        try:
            ups = await self._read(cfg)
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        flags = ups["status"].split()
        failing = [_FLAGS[f] for f in _FAILING if f in flags]
        degrading = [_FLAGS[f] for f in _DEGRADING if f in flags]
        summary = _summary(cfg.ups, ups)
        if failing:
            return HealthStatus.unhealthy(f"{summary}: {', '.join(failing + degrading)}")
        if degrading:
            return HealthStatus.degraded(f"{summary}: {', '.join(degrading)}")
        return HealthStatus.healthy(summary)

    async def _read(self, cfg: UpscConfig) -> dict[str, Any]:
        address = _address(cfg)
        result = await self.runner.run(["upsc", f"{cfg.ups}@{address}"], timeout=_TIMEOUT)
        if result.exit_status not in (0, 126, 127):
            await self._explain(cfg, address, result.stderr or result.stdout)
        variables = _variables(result.check().stdout)
        if "ups.status" not in variables:
            raise CollectionError(f"upsc {cfg.ups}@{address} printed no ups.status")
        return _ups(variables)

    async def _explain(self, cfg: UpscConfig, address: str, said: str) -> None:
        error = next(
            (line.strip() for line in said.splitlines() if line.startswith("Error:")),
            said.strip(),
        )
        lowered = error.lower()
        if "data stale" in lowered:
            raise PluginNotReadyError(
                f"UPS {cfg.ups}@{address}: data stale (the NUT driver lost contact with the UPS)"
            )
        if "driver not connected" in lowered:
            raise PluginNotReadyError(
                f"UPS {cfg.ups}@{address}: driver not connected (is the NUT driver running?)"
            )
        if "connection failure" in lowered:
            raise PluginNotReadyError(f"cannot reach upsd at {address}: {error}")
        if "unknown ups" in lowered:
            listing = await self.runner.run(["upsc", "-l", address], timeout=_TIMEOUT)
            known = ", ".join(listing.stdout.split()) if listing.ok else "?"
            raise CollectionError(
                f"upsd at {address} has no UPS named {cfg.ups!r} (it knows: {known or 'none'})"
            )
        raise CollectionError(f"upsc {cfg.ups}@{address}: {error}")


def _address(cfg: UpscConfig) -> str:
    return cfg.host if cfg.port == _DEFAULT_PORT else f"{cfg.host}:{cfg.port}"


def _variables(stdout: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name and " " not in name:
            variables[name] = value.strip()
    return variables


def _ups(variables: dict[str, str]) -> dict[str, Any]:
    status = variables["ups.status"]
    flags = status.split()
    ups: dict[str, Any] = {"status": status}
    for name, (key, _, _) in _VARIABLES.items():
        try:
            ups[key] = float(variables[name])
        except (KeyError, ValueError):
            continue
    for name, key in _TEXT.items():
        if name in variables and key not in ups:
            ups[key] = variables[name]
    for flag in _GAUGE_FLAGS:
        ups[_FLAGS[flag]] = int(flag in flags)
    ups["flags"] = [_FLAGS.get(flag, flag) for flag in flags]
    return ups


def _summary(name: str, ups: dict[str, Any]) -> str:
    parts = [f"{name} {ups['status']}"]
    if "battery_charge" in ups:
        parts.append(f"battery {ups['battery_charge']:g}%")
    if "battery_runtime" in ups:
        parts.append(f"{ups['battery_runtime'] / 60:.0f} min left")
    return ", ".join(parts)
