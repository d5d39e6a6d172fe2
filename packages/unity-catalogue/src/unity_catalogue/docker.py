"""The ``docker`` built-in plugin: containers by state, health and restarts, images, engine.

Talks to the Docker Engine API (v1.43+) over its unix socket: ``GET /version``
(engine and API version), ``GET /info`` (images, CPUs, memory of the host),
``GET /containers/json?all=true`` (every container and its state), ``GET
/containers/{id}/json`` (restart count and health status of each) and the
``stats`` of the running containers for a total of their CPU and memory use.
Unhealthy, restarting and dead containers make the health (``assess``, after
every run) degraded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    AlertRule,
    HealthStatus,
    HostFacts,
    MetricDisplay,
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

__all__ = ["DockerConfig", "DockerPlugin"]

_INFO = MetricKind.INFO
# Every State the Engine API reports for a container.
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH = ("healthy", "unhealthy", "starting", "none")

_METRICS = [
    MetricField(name="engine.version", kind=_INFO, description="Docker Engine version"),
    MetricField(name="engine.api_version", kind=_INFO, description="Engine API version"),
    MetricField(
        name="engine.cpus",
        unit="count",
        display=MetricDisplay.FACT,
        description="CPUs the engine can use",
    ),
    MetricField(
        name="engine.memory",
        unit="bytes",
        display=MetricDisplay.FACT,
        description="Memory of the engine's host",
    ),
    MetricField(name="images", unit="count", description="Images stored by the engine"),
    MetricField(name="containers.total", unit="count", description="Containers in any state"),
    *(
        MetricField(name=f"containers.{state}", unit="count", description=f"Containers {state}")
        for state in STATES
    ),
    *(
        MetricField(
            name=f"health.{status}",
            unit="count",
            description=f"Containers whose health status is {status}"
            + (" (no health check)" if status == "none" else ""),
        )
        for status in HEALTH
    ),
    MetricField(
        name="restarts",
        unit="count",
        description="Restarts of all containers by their restart policy (sum of RestartCount)",
    ),
    MetricField(
        name="resources.cpu_percent",
        unit="%",
        description="CPU use of all running containers (100% is one full CPU)",
    ),
    MetricField(
        name="resources.memory_usage",
        unit="bytes",
        description="Memory used by all running containers, page cache excluded",
    ),
    MetricField(
        name="resources.memory_percent",
        unit="%",
        description="Memory used by all running containers as a share of the host's memory",
    ),
    MetricField(name="instances.*.state", kind=_INFO, description="State of the container"),
    MetricField(
        name="instances.*.health", kind=_INFO, description="Health status, or none without one"
    ),
    MetricField(name="instances.*.image", kind=_INFO, description="Image the container runs"),
    MetricField(name="instances.*.status", kind=_INFO, description="Status text (Up 2 hours, ...)"),
    MetricField(
        name="instances.*.restart_count",
        unit="count",
        description="Restarts of the container by its restart policy",
    ),
]


class DockerConfig(BaseModel):
    """Config of the ``docker`` plugin."""

    model_config = ConfigDict(extra="forbid")

    socket: str = Field(
        default="/var/run/docker.sock", description="Path of the Docker Engine's unix socket."
    )


class DockerPlugin(PluginBase[DockerConfig]):
    """Reports the containers of a Docker Engine: states, health, restarts and resource use."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="docker",
            name="Docker",
            version="1.0.0",
            description="Containers by state, health and restart counts, images, engine "
            "version and the total CPU and memory of running containers, from the Docker "
            "Engine API over its unix socket.",
            author="Unity developers",
            category=PluginCategory.CONTAINER,
            tags=["docker", "containers", "health", "restarts", "images"],
            config_schema=DockerConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["httpx"]),
            default_interval=60,
            timeout=30,
            alert_rules=[
                AlertRule(
                    id="container-restarting",
                    metric="containers.restarting",
                    threshold=0,
                    for_seconds=120,
                    summary="{value} containers restarting on {host}",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """The Docker Engine's socket, when this user may use it."""
        if not (facts.docker_socket and facts.docker_socket_readable):
            return []
        return one_proposal(
            cls,
            title="Docker containers",
            reason=f"The Docker Engine's socket {facts.docker_socket} is usable by this user.",
            config={"socket": facts.docker_socket},
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        async with DockerEngine(cfg.socket) as engine:
            version, info, summaries = await asyncio.gather(
                engine.get("/version"), engine.get("/info"), engine.containers()
            )
            details = await engine.inspect([str(c["Id"]) for c in summaries])
            running = [str(c["Id"]) for c in summaries if c.get("State") == "running"]
            stats = await engine.stats(running)
        instances = {
            container_name(summary): _instance(summary, details[str(summary["Id"])])
            for summary in summaries
            if str(summary["Id"]) in details
        }
        usage = [container_usage(sample) for sample in stats.values()]
        memory_usage = sum(u["memory"]["usage"] for u in usage)
        host_memory = int(info.get("MemTotal") or 0)
        return {
            "engine": {
                "version": str(version.get("Version", "")),
                "api_version": str(version.get("ApiVersion", "")),
                "cpus": int(info.get("NCPU") or 0),
                "memory": host_memory,
            },
            "images": int(info.get("Images") or 0),
            "containers": {
                "total": len(instances),
                **{state: _count(instances, "state", state) for state in STATES},
            },
            "health": {status: _count(instances, "health", status) for status in HEALTH},
            "restarts": sum(i["restart_count"] for i in instances.values()),
            "resources": {
                "cpu_percent": round(sum(u["cpu_percent"] for u in usage), 3),
                "memory_usage": memory_usage,
                "memory_percent": round(memory_usage / host_memory * 100, 3)
                if host_memory
                else 0.0,
            },
            "instances": instances,
        }

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        try:
            async with DockerEngine(cfg.socket) as engine:
                summaries = await engine.containers()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        # The list is enough to judge: no need to inspect every container here.
        return self.assess({"instances": {container_name(c): _listed(c) for c in summaries}})

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Containers restarting, dead or unhealthy: degraded."""
        instances: dict[str, dict[str, Any]] = document["instances"]
        troubled = {
            name: problem for name, i in instances.items() if (problem := _problem(i)) is not None
        }
        if troubled:
            listing = ", ".join(f"{name} {problem}" for name, problem in troubled.items())
            return HealthStatus.degraded(
                f"{len(troubled)} container(s) in trouble: {listing}", containers=troubled
            )
        return HealthStatus.healthy(f"{len(instances)} container(s)")


def _instance(summary: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    state = _mapping(detail.get("State"))
    health = _mapping(state.get("Health"))
    return {
        "state": str(summary.get("State") or state.get("Status") or "unknown"),
        "health": str(health.get("Status") or "none"),
        "image": str(summary.get("Image", "")),
        "status": str(summary.get("Status", "")),
        "restart_count": int(detail.get("RestartCount") or 0),
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(instances: dict[str, dict[str, Any]], key: str, value: str) -> int:
    return sum(1 for i in instances.values() if i[key] == value)


def _listed(summary: dict[str, Any]) -> dict[str, str]:
    """State and health of a container from its list entry alone."""
    # The list has no health field; its Status text ends "(unhealthy)" as docker ps shows.
    unhealthy = "(unhealthy)" in str(summary.get("Status", ""))
    return {"state": str(summary.get("State", "")), "health": "unhealthy" if unhealthy else ""}


def _problem(instance: dict[str, Any]) -> str | None:
    """Why a container needs attention; None when it is fine."""
    if instance["state"] in ("restarting", "dead"):
        return str(instance["state"])
    if instance["health"] == "unhealthy":
        return "unhealthy"
    return None
