"""The ``upsc`` built-in plugin: a UPS through Network UPS Tools (charge, runtime, load, status).

Runs ``upsc <ups>@<host>[:<port>]`` (NUT 2.7 / 2.8), which prints the UPS's
variables as ``name: value`` lines (``battery.charge: 100``,
``battery.runtime: 2810``, ``ups.load: 18``, ``input.voltage: 232.0``,
``ups.status: OL CHRG``), and decodes the ``ups.status`` flags of the NUT
developer guide (OL on line, OB on battery, LB low battery, CHRG charging,
RB replace battery, OVER overload, FSD forced shutdown...). upsd's errors
come on stderr as ``Error: Data stale``, ``Error: Driver not connected``,
``Error: Unknown UPS`` or ``Error: Connection failure: ...``.

Health (``assess``, after every run): on battery, replace-battery, overload or
an alarm make it degraded; low battery, forced shutdown, or -- on battery -- a
runtime or charge below the UPS's own low mark (``battery.runtime.low``,
``battery.charge.low``) or below 5 minutes / 20 % make it unhealthy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    PluginNotReadyError,
    Proposal,
    Requirements,
)

from ._proposing import service_proposals

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
# On battery, below either mark (or the UPS's own, when higher) is as bad as low battery.
RUNTIME_LOW = 300.0
CHARGE_LOW = 20.0

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
# The UPS's own marks: below them it reports low battery (LB).
_MARKS: dict[str, tuple[str, str, str]] = {
    "battery.charge.low": ("battery_charge_low", "%", "Charge at which the UPS reports low"),
    "battery.runtime.low": ("battery_runtime_low", "s", "Runtime at which the UPS reports low"),
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
            name=f"ups.*.{key}", unit=unit, display=MetricDisplay.FACT, description=description
        )
        for key, unit, description in _MARKS.values()
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


class UpscPlugin(PluginBase[UpscConfig]):
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

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """A NUT server (upsd) listening here, when the upsc client is installed."""
        if not facts.has("upsc"):
            return []
        return service_proposals(
            cls,
            facts,
            service="NUT UPS server",
            ports=[_DEFAULT_PORT],
            processes=["upsd"],
            config=lambda socket: {
                "host": f"[{socket.host}]" if socket.ipv6 else socket.host,
                "port": socket.port,
            },
            advice="Set ups to the UPS's name in ups.conf (upsc -l lists them).",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        return {"ups": {cfg.ups: await self._read(cfg)}}

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        try:
            ups = await self._read(cfg)
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess({"ups": {cfg.ups: ups}})

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

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """On battery: degraded; low battery, or little runtime left on battery: unhealthy."""
        # One UPS per document: the one named in the config.
        name, ups = next(iter(document["ups"].items()))
        return _judge(name, ups)


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
    for name, (key, _, _) in (_VARIABLES | _MARKS).items():
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


def _summary(ups: dict[str, Any]) -> str:
    """``on battery, 64 %, 7 min left``: where the power comes from and how long it lasts."""
    flags = ups["status"].split()
    if "OB" in flags:
        parts = ["on battery"]
    elif "OL" in flags:
        parts = ["on line, charging" if "CHRG" in flags else "on line"]
    else:
        parts = [f"status {ups['status']}"]
    if "battery_charge" in ups:
        parts.append(f"{ups['battery_charge']:g} %")
    runtime = ups.get("battery_runtime")
    if runtime is not None:
        parts.append(f"{runtime:.0f} s left" if runtime < 120 else f"{runtime / 60:.0f} min left")
    return ", ".join(parts)


def _judge(name: str, ups: dict[str, Any]) -> HealthStatus:
    flags = ups["status"].split()
    details: dict[str, Any] = {
        "ups": name,
        "status": ups["status"],
        **{key: ups[key] for key in ("battery_charge", "battery_runtime", "load") if key in ups},
    }
    failing = [_FLAGS[flag].replace("_", " ") for flag in _FAILING if flag in flags]
    # "on battery" is already the first word of the summary.
    degrading = [
        _FLAGS[flag].replace("_", " ") for flag in _DEGRADING if flag in flags and flag != "OB"
    ]
    if "OB" in flags:
        runtime_mark = max(RUNTIME_LOW, ups.get("battery_runtime_low", 0.0))
        charge_mark = max(CHARGE_LOW, ups.get("battery_charge_low", 0.0))
        details |= {"runtime_low": runtime_mark, "charge_low": charge_mark}
        if ups.get("battery_runtime", runtime_mark) < runtime_mark:
            failing.append(f"runtime below {runtime_mark / 60:.0f} min")
        if ups.get("battery_charge", charge_mark) < charge_mark:
            failing.append(f"charge below {charge_mark:g} %")
    problems = ", ".join(failing + degrading)
    message = f"{_summary(ups)}: {problems}" if problems else _summary(ups)
    if failing:
        return HealthStatus.unhealthy(message, **details)
    if degrading or "OB" in flags:
        return HealthStatus.degraded(message, **details)
    return HealthStatus.healthy(message, **details)
