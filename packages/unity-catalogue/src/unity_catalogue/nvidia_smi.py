"""The ``nvidia-smi`` built-in plugin: NVIDIA GPUs and the processes using them.

Runs ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` and
``nvidia-smi --query-compute-apps=pid,process_name,used_memory,gpu_uuid
--format=csv,noheader,nounits`` (NVIDIA driver 450 and later; see
``nvidia-smi --help-query-gpu``), parsed by :mod:`._nvidia`, the module the
``gpu`` plugin shares. Memory is in MiB, power in W, temperature in °C; GPUs are keyed by index,
processes by pid.
"""

from __future__ import annotations

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

from ._nvidia import query_gpus, query_processes
from ._proposing import one_proposal

__all__ = ["NvidiaSmiConfig", "NvidiaSmiPlugin"]

_TIMEOUT = 20.0

_METRICS = [
    MetricField(name="gpus.*.name", kind=MetricKind.INFO, description="GPU model"),
    MetricField(name="gpus.*.uuid", kind=MetricKind.INFO, description="GPU UUID"),
    MetricField(name="gpus.*.utilization", unit="%", description="GPU core utilisation"),
    MetricField(
        name="gpus.*.memory_utilization", unit="%", description="Memory controller utilisation"
    ),
    MetricField(
        name="gpus.*.memory_total",
        unit="MiB",
        display=MetricDisplay.FACT,
        description="Memory installed",
    ),
    MetricField(name="gpus.*.memory_used", unit="MiB", description="Memory in use"),
    MetricField(name="gpus.*.temperature", unit="°C", description="GPU core temperature"),
    MetricField(name="gpus.*.power_draw", unit="W", description="Power draw"),
    MetricField(
        name="gpus.*.power_limit", unit="W", display=MetricDisplay.FACT, description="Power limit"
    ),
    MetricField(name="gpus.*.fan_speed", unit="%", description="Fan speed (not on passive cards)"),
    MetricField(name="processes.*.name", kind=MetricKind.INFO, description="Process name"),
    MetricField(name="processes.*.memory_used", unit="MiB", description="GPU memory it uses"),
    MetricField(name="processes.*.gpu", kind=MetricKind.INFO, description="Index of its GPU"),
    MetricField(name="gpu_count", unit="count", description="GPUs found"),
    MetricField(name="process_count", unit="count", description="Processes using a GPU"),
]


class NvidiaSmiConfig(BaseModel):
    """Config of the ``nvidia-smi`` plugin."""

    model_config = ConfigDict(extra="forbid")

    processes: bool = Field(
        default=True, description="Also list the compute processes using each GPU."
    )


class NvidiaSmiPlugin(PluginBase[NvidiaSmiConfig]):
    """Reports every NVIDIA GPU of the host and what runs on it."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="nvidia-smi",
            name="NVIDIA GPUs (nvidia-smi)",
            version="1.0.0",
            description="Every NVIDIA GPU with utilisation, memory, temperature, power and fan, "
            "and the compute processes using them, from nvidia-smi's CSV queries.",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["nvidia", "gpu", "nvidia-smi", "cuda"],
            config_schema=NvidiaSmiConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["nvidia-smi"]),
            default_interval=30,
            timeout=45,
            supports_remote=True,
            alert_rules=[
                AlertRule(
                    id="gpu-hot",
                    metric="gpus.*.temperature",
                    threshold=85,
                    clear=80,
                    for_seconds=120,
                    summary="GPU {item} on {host} is at {value}{unit}",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """NVIDIA GPUs, when nvidia-smi is installed."""
        cards = [gpu for gpu in facts.gpus if gpu.vendor == "nvidia"]
        if not cards or not facts.has("nvidia-smi"):
            return []
        return one_proposal(
            cls,
            title=f"Hardware state of {len(cards)} NVIDIA GPU{'s' if len(cards) > 1 else ''}",
            reason=f"Found {', '.join(gpu.name for gpu in cards)} and nvidia-smi.",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        gpus: dict[str, dict[str, Any]] = {}
        for gpu in await query_gpus(self, _TIMEOUT):
            gpus[str(gpu.pop("index", len(gpus)))] = gpu
        document: dict[str, Any] = {"gpus": gpus, "gpu_count": len(gpus)}
        if cfg.processes:
            index_of = {gpu.get("uuid"): key for key, gpu in gpus.items()}
            processes: dict[str, dict[str, Any]] = {}
            for process in await query_processes(self, _TIMEOUT):
                uuid = process.pop("gpu_uuid", None)
                if uuid in index_of:
                    process["gpu"] = index_of[uuid]
                # Keyed by pid; a process on several GPUs is listed once per GPU.
                key = str(process.pop("pid", len(processes)))
                if key in processes:
                    key = f"{key}@{process.get('gpu', len(processes))}"
                processes[key] = process
            document["processes"] = processes
            document["process_count"] = len(processes)
        else:
            document["process_count"] = 0
        return document

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """No GPUs: not applicable (nothing to monitor); otherwise healthy, naming them."""
        if not document["gpus"]:
            return HealthStatus.not_applicable("no NVIDIA GPU on this host")
        names = ", ".join(gpu.get("name", "?") for gpu in document["gpus"].values())
        return HealthStatus.healthy(names)
