"""The ``systemctl`` built-in plugin: failed systemd units and the state of chosen units.

Runs systemd's ``systemctl`` (tested with systemd 252):

- ``systemctl list-units --state=failed --output=json`` for the failed units,
  falling back to the ``--plain --no-legend`` table where a systemd prints no JSON;
- ``systemctl is-system-running`` for the manager's overall state;
- ``systemctl show <units> -p Id,LoadState,ActiveState,SubState,NRestarts,
  ExecMainStartTimestamp --timestamp=utc`` for the configured units (``key=value``
  blocks, one per unit, in the order asked; ``--timestamp=`` needs systemd 247,
  older ones are asked again without it).

A failed unit makes the health (``assess``, after every run) degraded. On a host whose init is not
systemd (most containers) systemctl cannot operate: that is reported as a
missing dependency, with systemctl's own reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    CommandResult,
    DependencyMissingError,
    HealthStatus,
    HostFacts,
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

from ._proposing import one_proposal

__all__ = ["SystemctlConfig", "SystemctlPlugin"]

_INFO = MetricKind.INFO
_TIMEOUT = 20.0
_PROPERTIES = "Id,LoadState,ActiveState,SubState,NRestarts,ExecMainStartTimestamp"
WATCHED_STATES = ("active", "failed", "inactive")

_METRICS = [
    MetricField(
        name="system_state",
        kind=_INFO,
        description="The manager's state (running, degraded, starting, ...; is-system-running)",
    ),
    MetricField(name="failed", unit="count", description="Units in the failed state"),
    MetricField(name="failed_units.*.load", kind=_INFO, description="Load state of a failed unit"),
    MetricField(name="failed_units.*.sub", kind=_INFO, description="Sub-state of a failed unit"),
    MetricField(
        name="failed_units.*.description", kind=_INFO, description="Description of a failed unit"
    ),
    MetricField(name="watched.total", unit="count", description="Units chosen in config units"),
    *(
        MetricField(
            name=f"watched.{state}", unit="count", description=f"Chosen units that are {state}"
        )
        for state in WATCHED_STATES
    ),
    MetricField(
        name="watched.other",
        unit="count",
        description="Chosen units activating, deactivating, reloading or in maintenance",
    ),
    MetricField(name="units.*.load", kind=_INFO, description="Load state (loaded, not-found...)"),
    MetricField(name="units.*.active", kind=_INFO, description="Active state of a chosen unit"),
    MetricField(name="units.*.sub", kind=_INFO, description="Sub-state (running, exited, ...)"),
    MetricField(
        name="units.*.restarts",
        unit="count",
        description="Automatic restarts of a service since it was last started by hand",
    ),
    MetricField(
        name="units.*.started_at",
        unit="s",
        description="When the service's main process started, as Unix time",
    ),
]


class SystemctlConfig(BaseModel):
    """Config of the ``systemctl`` plugin."""

    model_config = ConfigDict(extra="forbid")

    units: list[str] = Field(
        default_factory=list,
        description="Units whose state to report (nginx.service, backup.timer); a unit "
        "without a suffix is a service.",
    )


class SystemctlPlugin(PluginBase[SystemctlConfig]):
    """Reports failed systemd units and the state of the units an operator cares about."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="systemctl",
            name="systemd units",
            version="1.0.0",
            description="Failed systemd units, the manager's state, and state, sub-state, "
            "restarts and start time of chosen units, from systemctl.",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["systemd", "services", "units", "failed"],
            config_schema=SystemctlConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["systemctl"]),
            default_interval=60,
            timeout=30,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="failed-units",
                    metric="failed",
                    threshold=0,
                    summary="{value} failed systemd units on {host}",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """systemd, when it is the running init."""
        if not facts.systemd or not facts.has("systemctl"):
            return []
        return one_proposal(
            cls,
            title="Failed systemd units",
            reason="systemd runs this host; add units to watch to the config.",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        failed = await self._failed_units()
        state = await self.runner.run(["systemctl", "is-system-running"], timeout=_TIMEOUT)
        units = await self._show(cfg.units) if cfg.units else {}
        watched = dict.fromkeys(("total", *WATCHED_STATES, "other"), 0)
        watched["total"] = len(units)
        for unit in units.values():
            key = unit["active"] if unit["active"] in WATCHED_STATES else "other"
            watched[key] += 1
        return {
            "system_state": state.stdout.strip() or "unknown",
            "failed": len(failed),
            "failed_units": failed,
            "watched": watched,
            "units": units,
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    async def _failed_units(self) -> dict[str, dict[str, str]]:
        base = ["systemctl", "list-units", "--state=failed", "--no-pager"]
        result = _checked(await self.runner.run([*base, "--output=json"], timeout=_TIMEOUT))
        try:
            rows = json.loads(result.stdout)
        except ValueError:
            rows = None
        if not isinstance(rows, list):
            plain = [*base, "--plain", "--no-legend"]
            result = _checked(await self.runner.run(plain, timeout=_TIMEOUT))
            rows = _plain_rows(result.stdout)
        return {
            str(row["unit"]): {
                "load": str(row.get("load", "")),
                "sub": str(row.get("sub", "")),
                "description": str(row.get("description", "")),
            }
            for row in rows
            if isinstance(row, dict) and row.get("unit")
        }

    async def _show(self, units: list[str]) -> dict[str, dict[str, Any]]:
        argv = ["systemctl", "show", *units, "-p", _PROPERTIES, "--no-pager"]
        result = await self.runner.run([*argv, "--timestamp=utc"], timeout=_TIMEOUT)
        if not result.ok and "--timestamp" in result.stderr:
            result = await self.runner.run(argv, timeout=_TIMEOUT)
        blocks = _blocks(_checked(result).stdout)
        # One block per unit asked for, in the same order (Id may name an alias's target).
        return {unit: _unit(block) for unit, block in zip(units, blocks, strict=False)}

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Failed units, or chosen units failed or not found: degraded."""
        problems = dict.fromkeys(document["failed_units"], "failed")
        for name, unit in document["units"].items():
            if unit["load"] == "not-found":
                problems[name] = "not found"
            elif unit["active"] == "failed":
                problems[name] = "failed"
        if problems:
            listing = ", ".join(f"{name} {problem}" for name, problem in problems.items())
            return HealthStatus.degraded(
                f"{len(problems)} unit(s) need attention: {listing}", units=problems
            )
        return HealthStatus.healthy(f"system {document['system_state']}")


def _checked(result: CommandResult) -> CommandResult:
    """``result.check()``, with systemctl's "cannot operate here" told apart."""
    if result.ok or result.exit_status in (126, 127):
        return result.check()
    text = result.stderr.strip()
    first = text.splitlines()[0] if text else ""
    if "has not been booted with systemd" in text:
        raise DependencyMissingError(f"systemd is not the init system on the target: {first}")
    if "Failed to connect to bus" in text:
        raise PluginNotReadyError(f"systemctl cannot reach systemd: {text.splitlines()[-1]}")
    return result.check()


def _plain_rows(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        # "● unit load active sub description": older systemd prints the bullet even here.
        fields = line.lstrip("●* ").split(None, 4)
        if len(fields) >= 4:
            unit, load, active, sub = fields[:4]
            description = fields[4].strip() if len(fields) > 4 else ""
            rows.append(
                {
                    "unit": unit,
                    "load": load,
                    "active": active,
                    "sub": sub,
                    "description": description,
                }
            )
    return rows


def _blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = value
    return blocks


def _unit(props: dict[str, str]) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "load": props.get("LoadState", ""),
        "active": props.get("ActiveState", ""),
        "sub": props.get("SubState", ""),
    }
    restarts = props.get("NRestarts", "")
    if restarts.isdigit():
        unit["restarts"] = int(restarts)
    started = _timestamp(props.get("ExecMainStartTimestamp", ""))
    if started is not None:
        unit["started_at"] = started
    return unit


def _timestamp(value: str) -> float | None:
    """Unix time of "Mon 2024-05-13 09:12:01 UTC" (--timestamp=utc) or "@1715591521"."""
    value = value.strip()
    if value.startswith("@"):
        try:
            return float(value[1:])
        except ValueError:
            return None
    parts = value.split()
    if len(parts) != 4 or parts[3] not in ("UTC", "GMT"):
        # Local-time stamps of systemd < 247 name a zone we cannot resolve reliably.
        return None
    try:
        moment = datetime.strptime(f"{parts[1]} {parts[2]}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).timestamp()
