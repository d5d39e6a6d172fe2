"""The ``lxc-list`` built-in plugin: LXD / Incus containers and VMs with their state.

Runs ``lxc list --format json`` (LXD; tested with the LXD 5.0 client) or
``incus list --format json`` (Incus), which print one full instance object per
container or virtual machine (the ``InstanceFull`` of the LXD REST API):
``status``, ``type``, ``project``, ``location`` and a ``state`` with CPU time,
memory, disk, network counters and process count when the instance runs.
An instance in the Error status makes the health check degraded.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    CollectionError,
    CommandResult,
    DependencyMissingError,
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

__all__ = ["LxcListConfig", "LxcListPlugin"]

_INFO = MetricKind.INFO
_COUNTER = MetricKind.COUNTER
_TIMEOUT = 30.0
STATUSES = ("running", "stopped", "frozen", "error")
TYPES = {"container": "containers", "virtual-machine": "virtual_machines"}

_METRICS = [
    MetricField(name="total", unit="count", description="Instances (containers and VMs)"),
    *(
        MetricField(name=f"status.{s}", unit="count", description=f"Instances {s}")
        for s in STATUSES
    ),
    MetricField(
        name="status.other",
        unit="count",
        description="Instances starting, stopping, freezing or in another transient status",
    ),
    MetricField(name="types.containers", unit="count", description="System containers"),
    MetricField(name="types.virtual_machines", unit="count", description="Virtual machines"),
    MetricField(name="instances.*.status", kind=_INFO, description="Status (Running, Stopped...)"),
    MetricField(name="instances.*.type", kind=_INFO, description="container or virtual-machine"),
    MetricField(name="instances.*.project", kind=_INFO, description="Project of the instance"),
    MetricField(name="instances.*.location", kind=_INFO, description="Cluster member running it"),
    MetricField(
        name="instances.*.cpu_time",
        unit="s",
        kind=_COUNTER,
        description="CPU time used since the instance started",
    ),
    MetricField(name="instances.*.memory_usage", unit="bytes", description="Memory in use"),
    MetricField(
        name="instances.*.memory_peak", unit="bytes", description="Highest memory use seen"
    ),
    MetricField(name="instances.*.swap_usage", unit="bytes", description="Swap in use"),
    MetricField(
        name="instances.*.disk_usage",
        unit="bytes",
        description="Space used by the root disk (where the storage driver reports it)",
    ),
    MetricField(
        name="instances.*.network_rx_bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes received on all interfaces but loopback",
    ),
    MetricField(
        name="instances.*.network_tx_bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes sent on all interfaces but loopback",
    ),
    MetricField(name="instances.*.processes", unit="count", description="Processes running"),
]


class LxcListConfig(BaseModel):
    """Config of the ``lxc-list`` plugin."""

    model_config = ConfigDict(extra="forbid")

    command: Literal["lxc", "incus"] = Field(
        default="lxc", description="Client to run: lxc (LXD) or incus (Incus)."
    )
    all_projects: bool = Field(
        default=False, description="List the instances of every project, not only the default."
    )


class LxcListPlugin(PluginBase[LxcListConfig]):
    """Reports the LXD / Incus instances of a host and what each one uses."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="lxc-list",
            name="LXD / Incus instances",
            version="1.0.0",
            description="LXD or Incus containers and virtual machines by status, with CPU "
            "time, memory, disk, network and processes of each, from lxc list / incus list.",
            author="Unity developers",
            category=PluginCategory.CONTAINER,
            tags=["lxd", "incus", "lxc", "containers", "vm"],
            config_schema=LxcListConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["lxc"]),
            default_interval=60,
            timeout=45,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        instances = await self._list(cfg)
        status = dict.fromkeys((*STATUSES, "other"), 0)
        types = dict.fromkeys(TYPES.values(), 0)
        for instance in instances.values():
            key = instance["status"].lower()
            status[key if key in STATUSES else "other"] += 1
            if instance["type"] in TYPES:
                types[TYPES[instance["type"]]] += 1
        return {"total": len(instances), "status": status, "types": types, "instances": instances}

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        try:
            instances = await self._list(cfg)
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess({"instances": instances})

    async def _list(self, cfg: LxcListConfig) -> dict[str, dict[str, Any]]:
        argv = [cfg.command, "list", "--format", "json"]
        if cfg.all_projects:
            argv.append("--all-projects")
        result = _checked(await self.runner.run(argv, timeout=_TIMEOUT))
        try:
            rows = json.loads(result.stdout)
        except ValueError as exc:
            raise CollectionError(f"{cfg.command} list printed no JSON") from exc
        if not isinstance(rows, list):
            raise CollectionError(f"{cfg.command} list printed JSON that is not a list")
        instances: dict[str, dict[str, Any]] = {}
        for row in rows:
            if isinstance(row, dict) and row.get("name"):
                project = str(row.get("project") or "default")
                key = str(row["name"]) if project == "default" else f"{project}/{row['name']}"
                instances[key] = _instance(row)
        return instances

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Instances in the error state: degraded."""
        instances: dict[str, dict[str, Any]] = document["instances"]
        failed = sorted(name for name, i in instances.items() if i["status"].lower() == "error")
        if failed:
            return HealthStatus.degraded(
                f"{len(failed)} instance(s) in error: {', '.join(failed)}", instances=failed
            )
        return HealthStatus.healthy(f"{len(instances)} instance(s)")


def _checked(result: CommandResult) -> CommandResult:
    """``result.check()``, with "the daemon is not there" told apart from other failures."""
    if result.ok or result.exit_status in (126, 127):
        return result.check()
    command = result.argv[0] if result.argv else "lxc"
    reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
    message = reason[0].removeprefix("Error: ")
    lowered = message.lower()
    if "permission denied" in lowered:
        raise DependencyMissingError(
            f"{command}: permission denied on the daemon's socket ({message}); run the hub as "
            f"root or as a member of the {'incus-admin' if command == 'incus' else 'lxd'} group"
        )
    if "unix.socket" in lowered or "daemon doesn't appear to be started" in lowered:
        raise PluginNotReadyError(f"{command}: the daemon is not reachable: {message}")
    return result.check()


def _number(node: Any, *keys: str) -> int | None:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return int(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def _instance(row: dict[str, Any]) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "status": str(row.get("status", "Unknown")),
        "type": str(row.get("type") or "container"),
        "project": str(row.get("project") or "default"),
    }
    location = row.get("location")
    if location and location != "none":
        instance["location"] = str(location)
    state = row.get("state")
    if not isinstance(state, dict):
        return instance
    readings = {
        "memory_usage": _number(state, "memory", "usage"),
        "memory_peak": _number(state, "memory", "usage_peak"),
        "swap_usage": _number(state, "memory", "swap_usage"),
        "disk_usage": _number(state, "disk", "root", "usage"),
        "processes": _number(state, "processes"),
    }
    cpu = _number(state, "cpu", "usage")
    if cpu is not None:
        instance["cpu_time"] = cpu / 1e9
    instance.update({key: value for key, value in readings.items() if value is not None})
    networks = state.get("network")
    if isinstance(networks, dict):
        nics = [nic for name, nic in networks.items() if name != "lo" and isinstance(nic, dict)]
        instance["network_rx_bytes"] = sum(
            _number(nic, "counters", "bytes_received") or 0 for nic in nics
        )
        instance["network_tx_bytes"] = sum(
            _number(nic, "counters", "bytes_sent") or 0 for nic in nics
        )
    return instance
