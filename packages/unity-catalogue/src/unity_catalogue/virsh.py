"""The ``virsh`` built-in plugin: libvirt virtual machines and their state.

Runs libvirt's ``virsh`` (tested with libvirt 9.0): ``virsh list --all`` for
every domain with its id and state (running, idle, paused, in shutdown, shut
off, crashed, pmsuspended), then ``virsh dominfo <name>`` per domain for vCPUs,
memory, CPU time, autostart and persistence. virsh has no JSON output; both
formats are its stable, documented text tables (virsh(1)). A crashed domain
makes the health check degraded.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
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

__all__ = ["VirshConfig", "VirshPlugin"]

_INFO = MetricKind.INFO
_TIMEOUT = 20.0
# virsh's names of virDomainState, as metric keys.
STATES = {
    "no state": "no_state",
    "running": "running",
    "idle": "idle",
    "paused": "paused",
    "in shutdown": "in_shutdown",
    "shut off": "shut_off",
    "crashed": "crashed",
    "pmsuspended": "pmsuspended",
}
_KIB = 1024

_METRICS = [
    MetricField(name="total", unit="count", description="Domains defined or running"),
    *(
        MetricField(name=f"states.{key}", unit="count", description=f"Domains {name}")
        for name, key in STATES.items()
    ),
    MetricField(
        name="states.other", unit="count", description="Domains in a state virsh 9 does not name"
    ),
    MetricField(name="domains.*.state", kind=_INFO, description="State of the domain"),
    MetricField(name="domains.*.id", kind=_INFO, description="Domain id while it runs"),
    MetricField(name="domains.*.vcpus", unit="count", description="Virtual CPUs (config details)"),
    MetricField(
        name="domains.*.max_memory", unit="bytes", description="Maximum memory (config details)"
    ),
    MetricField(
        name="domains.*.used_memory",
        unit="bytes",
        description="Memory currently given to the domain (config details)",
    ),
    MetricField(
        name="domains.*.cpu_time",
        unit="s",
        kind=MetricKind.COUNTER,
        description="CPU time the domain has used (config details; running domains)",
    ),
    MetricField(
        name="domains.*.autostart",
        kind=_INFO,
        description="Whether libvirt starts the domain at boot (config details)",
    ),
    MetricField(
        name="domains.*.persistent",
        kind=_INFO,
        description="Whether the domain is defined, not only running (config details)",
    ),
]


class VirshConfig(BaseModel):
    """Config of the ``virsh`` plugin."""

    model_config = ConfigDict(extra="forbid")

    uri: str | None = Field(
        default=None,
        description="libvirt connection URI (virsh -c), e.g. qemu:///system; "
        "empty uses virsh's default.",
    )
    details: bool = Field(
        default=True,
        description="Also run virsh dominfo per domain for vCPUs, memory and CPU time.",
    )


class VirshPlugin(PluginBase[VirshConfig]):
    """Reports the virtual machines of a libvirt host and the state of each."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="virsh",
            name="Virtual machines (virsh)",
            version="1.0.0",
            description="libvirt domains (VMs) and their state -- running, paused, shut "
            "off, crashed -- with vCPUs, memory and CPU time, from virsh.",
            author="Unity developers",
            category=PluginCategory.CONTAINER,
            tags=["libvirt", "kvm", "qemu", "vm", "virtualization"],
            config_schema=VirshConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["virsh"]),
            default_interval=60,
            timeout=45,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        domains = await self._domains(cfg)
        if cfg.details:
            infos = await asyncio.gather(*(self._dominfo(cfg, name) for name in domains))
            for name, info in zip(list(domains), infos, strict=True):
                domains[name].update(info)
        states = dict.fromkeys(STATES.values(), 0)
        states["other"] = 0
        for domain in domains.values():
            key = STATES.get(domain["state"], "other")
            states[key] += 1
        return {"total": len(domains), "states": states, "domains": domains}

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        try:
            domains = await self._domains(cfg)
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess({"domains": domains})

    def _argv(self, cfg: VirshConfig, *args: str) -> list[str]:
        return ["virsh", *(["-c", cfg.uri] if cfg.uri else []), *args]

    async def _domains(self, cfg: VirshConfig) -> dict[str, dict[str, Any]]:
        result = await self.runner.run(self._argv(cfg, "list", "--all"), timeout=_TIMEOUT)
        return parse_list(_checked(result).stdout)

    async def _dominfo(self, cfg: VirshConfig, name: str) -> dict[str, Any]:
        result = await self.runner.run(self._argv(cfg, "dominfo", name), timeout=_TIMEOUT)
        # The domain can go away between the listing and this call.
        return parse_dominfo(result.stdout) if result.ok else {}

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Crashed domains: degraded."""
        domains: dict[str, dict[str, Any]] = document["domains"]
        crashed = sorted(name for name, d in domains.items() if d["state"] == "crashed")
        if crashed:
            return HealthStatus.degraded(
                f"{len(crashed)} domain(s) crashed: {', '.join(crashed)}", crashed=crashed
            )
        return HealthStatus.healthy(f"{len(domains)} domain(s)")


def _checked(result: CommandResult) -> CommandResult:
    """``result.check()``, with libvirt's "cannot connect" told apart from other failures."""
    if result.ok or result.exit_status in (126, 127):
        return result.check()
    errors = [line.removeprefix("error: ").strip() for line in result.stderr.splitlines()]
    reason = next((e for e in reversed(errors) if e), "no error message")
    if "permission denied" in reason.lower():
        raise DependencyMissingError(f"virsh: permission denied by libvirt ({reason})")
    if any("failed to connect to the hypervisor" in e for e in errors):
        raise PluginNotReadyError(f"virsh cannot connect to the hypervisor: {reason}")
    return result.check()


def parse_list(text: str) -> dict[str, dict[str, Any]]:
    """Domains of ``virsh list --all``: `` Id   Name   State`` rows under a dashed rule."""
    domains: dict[str, dict[str, Any]] = {}
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("---")), len(lines))
    for line in lines[start:]:
        # Columns are padded with at least two spaces; a state may hold one ("shut off").
        fields = re.split(r"\s{2,}", line.strip())
        if len(fields) != 3:
            continue
        domain_id, name, state = fields
        domains[name] = {"state": state}
        if domain_id.isdigit():
            domains[name]["id"] = int(domain_id)
    return domains


def parse_dominfo(text: str) -> dict[str, Any]:
    """vCPUs, memory, CPU time, autostart and persistence from ``virsh dominfo``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    info: dict[str, Any] = {}
    if fields.get("CPU(s)", "").isdigit():
        info["vcpus"] = int(fields["CPU(s)"])
    for key, name in (("Max memory", "max_memory"), ("Used memory", "used_memory")):
        match = re.fullmatch(r"(\d+) KiB", fields.get(key, ""))
        if match:
            info[name] = int(match.group(1)) * _KIB
    match = re.fullmatch(r"([\d.]+)s", fields.get("CPU time", ""))
    if match:
        info["cpu_time"] = float(match.group(1))
    if "Autostart" in fields:
        info["autostart"] = fields["Autostart"] == "enable"
    if "Persistent" in fields:
        info["persistent"] = fields["Persistent"] == "yes"
    return info
