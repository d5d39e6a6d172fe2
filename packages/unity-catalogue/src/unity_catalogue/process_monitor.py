"""The ``process-monitor`` built-in plugin: process counts, top consumers and watched names.

Like every built-in it uses only the public SDK, exactly as a third-party plugin would.
"""

from __future__ import annotations

import heapq
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import psutil
from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    Requirements,
)

from ._linux import PROC, full_name, read_stat

__all__ = ["ProcessMonitorConfig", "ProcessMonitorPlugin"]

# Reported even at zero so a chart of, say, zombies shows a drop to 0, not a gap.
_ALWAYS_REPORTED_STATUSES = (psutil.STATUS_RUNNING, psutil.STATUS_SLEEPING, psutil.STATUS_ZOMBIE)
_NOT_RUNNING = frozenset({psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD, psutil.STATUS_STOPPED})
_ATTRS = ["name", "status", "num_threads", "cpu_percent", "memory_info"]


def _top_metrics(top: str, order: str) -> list[MetricField]:
    return [
        MetricField(
            name=f"{top}.*.pid",
            kind=MetricKind.INFO,
            description=f"Process id, by rank of {order}",
        ),
        MetricField(name=f"{top}.*.name", kind=MetricKind.INFO, description="Process name"),
        MetricField(
            name=f"{top}.*.cpu_percent",
            unit="%",
            description="CPU usage since the last run; 100 is one full core",
        ),
        MetricField(
            name=f"{top}.*.memory_percent",
            unit="%",
            description="Resident memory as a share of physical memory",
        ),
        MetricField(name=f"{top}.*.memory_rss", unit="bytes", description="Resident memory"),
    ]


_METRICS = [
    MetricField(name="total", unit="count", description="Number of processes"),
    MetricField(name="threads", unit="count", description="Number of threads of all processes"),
    MetricField(
        name="status.*",
        unit="count",
        description="Number of processes in each status (running, sleeping, zombie, ...)",
    ),
    *_top_metrics("top_cpu", "CPU usage"),
    *_top_metrics("top_memory", "resident memory"),
    MetricField(
        name="watched.*.count",
        unit="count",
        description="Number of processes with a watched name (config watch)",
    ),
    MetricField(
        name="watched.*.running",
        kind=MetricKind.INFO,
        description="True when a process with the watched name is alive "
        "(not a zombie, dead or stopped)",
    ),
]


class ProcessMonitorConfig(BaseModel):
    """Config of the ``process-monitor`` plugin."""

    model_config = ConfigDict(extra="forbid")

    top_n: int = Field(
        default=5,
        ge=1,
        le=50,
        description="How many processes to list under top_cpu and top_memory.",
    )
    watch: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Process names (as `ps -o comm` shows them) whose presence is "
        "reported under watched.<name>.",
    )


@dataclass(frozen=True, slots=True)
class _Sample:
    pid: int
    name: str
    status: str
    threads: int
    cpu_percent: float
    rss: int


class ProcessMonitorPlugin(PluginBase[ProcessMonitorConfig]):
    """Counts processes and names the ones that use the most CPU and memory."""

    def __init__(self, config: ProcessMonitorConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        # A process's cpu_percent() measures since the previous call on the same
        # Process object, so the objects have to outlive a run.
        self._processes: dict[int, psutil.Process] = {}
        # With /proc: (pid, start time) -> (when, CPU seconds) of the last run, and
        # the name psutil would give (it may need the command line: read it once).
        self._cpu: dict[tuple[int, int], tuple[float, float]] = {}
        self._names: dict[tuple[int, int, str], str] = {}
        self._use_proc = read_stat(os.getpid()) is not None

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="process-monitor",
            name="Process monitor",
            version="1.0.0",
            description="Process and thread counts, top processes by CPU and memory, "
            "and whether named processes are running.",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["processes", "threads", "cpu", "memory"],
            config_schema=ProcessMonitorConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["psutil"]),
            default_interval=60,
            timeout=30,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        samples = self._sample()
        memory_total = psutil.virtual_memory().total
        status = Counter(dict.fromkeys(_ALWAYS_REPORTED_STATUSES, 0))
        status.update(s.status for s in samples)
        by_cpu = heapq.nlargest(cfg.top_n, samples, key=lambda s: (s.cpu_percent, s.rss))
        by_memory = heapq.nlargest(cfg.top_n, samples, key=lambda s: (s.rss, s.cpu_percent))
        return {
            "total": len(samples),
            "threads": sum(s.threads for s in samples),
            "status": dict(status),
            "top_cpu": [_describe(s, memory_total) for s in by_cpu],
            "top_memory": [_describe(s, memory_total) for s in by_memory],
            "watched": {name: _watched(name, samples) for name in cfg.watch},
        }

    def _sample(self) -> list[_Sample]:
        return self._sample_proc() if self._use_proc else self._sample_psutil()

    def _sample_proc(self) -> list[_Sample]:
        """One read of ``/proc/<pid>/stat`` per process; the same numbers psutil gives."""
        samples: list[_Sample] = []
        cpu: dict[tuple[int, int], tuple[float, float]] = {}
        names: dict[tuple[int, int, str], str] = {}
        for entry in os.listdir(PROC):
            if not entry.isdigit():
                continue
            pid = int(entry)
            stat = read_stat(pid)
            if stat is None:
                continue  # gone since the listing
            now = time.monotonic()
            key = (pid, stat.started)
            name_key = (pid, stat.started, stat.name)
            name = self._names.get(name_key) or full_name(pid, stat)
            names[name_key] = name
            cpu[key] = (now, stat.cpu_seconds)
            samples.append(
                _Sample(
                    pid=pid,
                    name=name,
                    status=stat.status,
                    threads=stat.threads,
                    cpu_percent=_cpu_percent(self._cpu.get(key), now, stat.cpu_seconds),
                    rss=stat.rss,
                )
            )
        self._cpu, self._names = cpu, names
        return samples

    def _sample_psutil(self) -> list[_Sample]:
        samples: list[_Sample] = []
        alive: dict[int, psutil.Process] = {}
        for pid in psutil.pids():
            process = self._processes.get(pid)
            try:
                # is_running() compares creation times, so a reused pid gets a fresh object.
                if process is None or not process.is_running():
                    process = psutil.Process(pid)
                # as_dict reads everything in one oneshot() and gives None, instead of
                # raising, for what this user may not read or a zombie no longer has.
                info = process.as_dict(attrs=_ATTRS, ad_value=None)
            except psutil.NoSuchProcess:
                continue
            alive[pid] = process
            memory = info["memory_info"]
            samples.append(
                _Sample(
                    pid=pid,
                    name=info["name"] or "",
                    status=info["status"] or "unknown",
                    threads=info["num_threads"] or 0,
                    cpu_percent=info["cpu_percent"] or 0.0,
                    rss=memory.rss if memory is not None else 0,
                )
            )
        self._processes = alive
        return samples


def _cpu_percent(previous: tuple[float, float] | None, now: float, cpu_seconds: float) -> float:
    """psutil's cpu_percent(): 100 is one full core, 0.0 on a process's first sight."""
    if previous is None or now <= previous[0]:
        return 0.0
    return round((cpu_seconds - previous[1]) / (now - previous[0]) * 100, 1)


def _describe(sample: _Sample, memory_total: int) -> dict[str, Any]:
    return {
        "pid": sample.pid,
        "name": sample.name,
        "cpu_percent": sample.cpu_percent,
        "memory_percent": round(100.0 * sample.rss / memory_total, 2) if memory_total else 0.0,
        "memory_rss": sample.rss,
    }


def _watched(name: str, samples: list[_Sample]) -> dict[str, Any]:
    matches = [s for s in samples if s.name == name]
    return {
        "count": len(matches),
        "running": any(s.status not in _NOT_RUNNING for s in matches),
    }
