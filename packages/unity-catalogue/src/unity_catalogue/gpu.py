"""The ``gpu`` built-in plugin (AI/ML): utilisation, memory, temperature and power per GPU.

The AI/ML view of NVIDIA GPUs: the figures that decide whether a model fits
and runs well, with thresholds that make the health check degraded. Reads
``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` through
:mod:`._nvidia`, shared with the ``nvidia-smi`` plugin.
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

from ._nvidia import query_gpus
from ._proposing import one_proposal

__all__ = ["GpuConfig", "GpuPlugin"]

_TIMEOUT = 20.0

_METRICS = [
    MetricField(name="gpus.*.name", kind=MetricKind.INFO, description="GPU model"),
    MetricField(name="gpus.*.utilization", unit="%", description="GPU core utilisation"),
    MetricField(name="gpus.*.memory_used", unit="MiB", description="Memory in use"),
    MetricField(
        name="gpus.*.memory_total",
        unit="MiB",
        display=MetricDisplay.FACT,
        description="Memory installed",
    ),
    MetricField(name="gpus.*.memory_free", unit="MiB", description="Memory left for models"),
    MetricField(name="gpus.*.memory_percent", unit="%", description="Share of memory in use"),
    MetricField(name="gpus.*.temperature", unit="°C", description="GPU core temperature"),
    MetricField(name="gpus.*.power_draw", unit="W", description="Power draw"),
    MetricField(
        name="gpus.*.power_limit", unit="W", display=MetricDisplay.FACT, description="Power limit"
    ),
    MetricField(
        name="gpus.*.power_percent", unit="%", description="Power draw as a share of the limit"
    ),
    MetricField(name="gpu_count", unit="count", description="GPUs reported"),
    MetricField(name="memory_used", unit="MiB", description="Memory in use on all GPUs"),
    MetricField(
        name="memory_total",
        unit="MiB",
        display=MetricDisplay.FACT,
        description="Memory of all GPUs",
    ),
    MetricField(name="power_draw", unit="W", description="Power draw of all GPUs"),
    MetricField(name="max_temperature", unit="°C", description="Hottest GPU (0 without GPUs)"),
]


class GpuConfig(BaseModel):
    """Config of the ``gpu`` plugin."""

    model_config = ConfigDict(extra="forbid")

    gpus: list[int] = Field(
        default_factory=list, description="GPU indexes to report; empty reports every GPU."
    )
    temperature_warn: float = Field(
        default=85.0, gt=0, le=130, description="Degraded when a GPU is hotter than this (°C)."
    )
    memory_warn_percent: float = Field(
        default=95.0,
        gt=0,
        le=100,
        description="Degraded when a GPU's memory is fuller than this (%).",
    )


class GpuPlugin(PluginBase[GpuConfig]):
    """Watches the GPUs that run local models."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="gpu",
            name="GPU",
            version="1.0.0",
            description="Utilisation, memory (used, free, percent), temperature and power of "
            "each NVIDIA GPU, with temperature and memory thresholds, via nvidia-smi.",
            author="Unity developers",
            category=PluginCategory.AI_ML,
            tags=["gpu", "nvidia", "ai", "ml", "llm", "cuda"],
            config_schema=GpuConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["nvidia-smi"]),
            default_interval=15,
            timeout=30,
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
            title=f"AI/ML load of {len(cards)} NVIDIA GPU{'s' if len(cards) > 1 else ''}",
            reason=f"Found {', '.join(gpu.name for gpu in cards)} and nvidia-smi.",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        wanted = set(cfg.gpus)
        gpus: dict[str, dict[str, Any]] = {}
        for gpu in await query_gpus(self, _TIMEOUT):
            index = gpu.get("index")
            if wanted and index not in wanted:
                continue
            gpus[str(index if index is not None else len(gpus))] = _view(gpu)
        return {
            "gpus": gpus,
            "gpu_count": len(gpus),
            "memory_used": sum(g.get("memory_used", 0.0) for g in gpus.values()),
            "memory_total": sum(g.get("memory_total", 0.0) for g in gpus.values()),
            "power_draw": round(sum(g.get("power_draw", 0.0) for g in gpus.values()), 2),
            "max_temperature": max((g.get("temperature", 0.0) for g in gpus.values()), default=0.0),
        }

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """A GPU hotter than temperature_warn or fuller than memory_warn_percent: degraded."""
        cfg = self.config
        if not document["gpus"]:
            return HealthStatus.not_applicable("no NVIDIA GPU on this host")
        problems = []
        for index, gpu in document["gpus"].items():
            if gpu.get("temperature", 0.0) > cfg.temperature_warn:
                problems.append(f"GPU {index} at {gpu['temperature']:g} °C")
            if gpu.get("memory_percent", 0.0) > cfg.memory_warn_percent:
                problems.append(f"GPU {index} memory {gpu['memory_percent']:g}% used")
        if problems:
            return HealthStatus.degraded("; ".join(problems))
        return HealthStatus.healthy(
            f"{document['gpu_count']} GPU(s), hottest {document['max_temperature']:g} °C"
        )


def _view(gpu: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        key: gpu[key]
        for key in (
            "name",
            "utilization",
            "memory_used",
            "memory_total",
            "temperature",
            "power_draw",
            "power_limit",
        )
        if key in gpu
    }
    if "memory_used" in view and view.get("memory_total"):
        view["memory_free"] = view["memory_total"] - view["memory_used"]
        view["memory_percent"] = round(100 * view["memory_used"] / view["memory_total"], 1)
    if "power_draw" in view and view.get("power_limit"):
        view["power_percent"] = round(100 * view["power_draw"] / view["power_limit"], 1)
    return view
