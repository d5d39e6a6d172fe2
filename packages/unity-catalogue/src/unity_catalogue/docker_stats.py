"""The ``docker-stats`` built-in plugin: resource use of every running container.

Talks to the Docker Engine API (v1.43+) over its unix socket: ``GET
/containers/json`` for the running containers, then ``GET
/containers/{id}/stats?stream=false`` for each, and reports what ``docker stats``
shows -- CPU %, memory usage / limit / %, network and block IO bytes, PIDs --
computed the same way (see :mod:`._docker_api`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
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

from ._docker_api import DockerEngine, container_name, container_usage
from ._proposing import one_proposal

__all__ = ["DockerStatsConfig", "DockerStatsPlugin"]

_COUNTER = MetricKind.COUNTER
_INFO = MetricKind.INFO

_METRICS = [
    MetricField(name="running", unit="count", description="Running containers reported"),
    MetricField(
        name="total.cpu_percent",
        unit="%",
        description="CPU use of all reported containers (100% is one full CPU)",
    ),
    MetricField(
        name="total.memory_usage",
        unit="bytes",
        description="Memory used by all reported containers, page cache excluded",
    ),
    MetricField(name="containers.*.id", kind=_INFO, description="Container id (short)"),
    MetricField(name="containers.*.image", kind=_INFO, description="Image the container runs"),
    MetricField(
        name="containers.*.cpu_percent",
        unit="%",
        description="CPU use since the engine's previous sample (100% is one full CPU)",
    ),
    MetricField(
        name="containers.*.memory.usage",
        unit="bytes",
        description="Memory used, inactive page cache excluded (as docker stats)",
    ),
    MetricField(
        name="containers.*.memory.limit",
        unit="bytes",
        description="Memory limit of the container (the host's memory when unlimited)",
    ),
    MetricField(
        name="containers.*.memory.percent", unit="%", description="Memory usage over its limit"
    ),
    MetricField(
        name="containers.*.network.rx_bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes received on all networks",
    ),
    MetricField(
        name="containers.*.network.tx_bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes sent on all networks",
    ),
    MetricField(
        name="containers.*.block_io.read_bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes read from block devices",
    ),
    MetricField(
        name="containers.*.block_io.write_bytes",
        unit="bytes",
        kind=_COUNTER,
        description="Bytes written to block devices",
    ),
    MetricField(name="containers.*.pids", unit="count", description="Processes and threads"),
]


class DockerStatsConfig(BaseModel):
    """Config of the ``docker-stats`` plugin."""

    model_config = ConfigDict(extra="forbid")

    socket: str = Field(
        default="/var/run/docker.sock", description="Path of the Docker Engine's unix socket."
    )
    containers: list[str] = Field(
        default_factory=list,
        description="Report only the running containers with these names; empty reports all.",
    )


class DockerStatsPlugin(PluginBase[DockerStatsConfig]):
    """Reports what ``docker stats`` shows, one entry per running container."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="docker-stats",
            name="Docker stats",
            version="1.0.0",
            description="CPU, memory, network and block IO of every running container, "
            "from the Docker Engine API over its unix socket.",
            author="Unity developers",
            category=PluginCategory.CONTAINER,
            tags=["docker", "containers", "cpu", "memory", "network", "io"],
            config_schema=DockerStatsConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["httpx"]),
            default_interval=30,
            timeout=20,
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """The Docker Engine's socket, when this user may use it."""
        if not (facts.docker_socket and facts.docker_socket_readable):
            return []
        return one_proposal(
            cls,
            title="Docker container resource use",
            reason=f"The Docker Engine's socket {facts.docker_socket} is usable by this user.",
            config={"socket": facts.docker_socket},
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        async with DockerEngine(cfg.socket) as engine:
            running = [
                c for c in await engine.containers(all_states=False) if c.get("State") == "running"
            ]
            if cfg.containers:
                wanted = set(cfg.containers)
                running = [c for c in running if container_name(c) in wanted]
            stats = await engine.stats([str(c["Id"]) for c in running])
        containers: dict[str, dict[str, Any]] = {}
        for summary in running:
            sample = stats.get(str(summary["Id"]))
            if sample is None:
                continue
            containers[container_name(summary)] = {
                "id": str(summary["Id"])[:12],
                "image": str(summary.get("Image", "")),
                **container_usage(sample),
            }
        return {
            "running": len(containers),
            "total": {
                "cpu_percent": round(sum(c["cpu_percent"] for c in containers.values()), 3),
                "memory_usage": sum(c["memory"]["usage"] for c in containers.values()),
            },
            "containers": containers,
        }

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        try:
            async with DockerEngine(cfg.socket) as engine:
                version = await engine.get("/version")
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return HealthStatus.healthy(f"Docker Engine {version.get('Version', '?')}")
