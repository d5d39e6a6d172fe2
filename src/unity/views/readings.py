"""Headline numbers of a host and their last-hour sparklines.

Headline numbers come from the latest document of each (plugin, host), found
by *declared metric name*, so an external plugin that declares the same names
lights up its host the same way: ``cpu.percent``, ``memory.percent``, the root
filesystem's ``partitions./.percent`` (else ``max_used_percent`` or
``disk.percent``), and any single (wildcard-free) metric in °C as a temperature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage import series as series_store
from unity_sdk import MetricField

__all__ = [
    "HEADLINES",
    "SPARK_HEIGHT",
    "SPARK_WIDTH",
    "Headlines",
    "Reading",
    "Sparkline",
    "lookup",
    "sparkline",
    "sparks",
]

HEADLINES = {
    "cpu.percent": "cpu",
    "memory.percent": "memory",
    "max_used_percent": "disk",
    "disk.percent": "disk",
}
# The share of the root filesystem in use, where a plugin reports filesystems by mount point.
ROOT_DISK = "partitions./.percent"
SPARK_SPAN = timedelta(hours=1)
SPARK_STEP = 60
SPARK_WIDTH = 120
SPARK_HEIGHT = 28


@dataclass(frozen=True)
class Reading:
    """One headline number: what it is, its value and unit, which plugin said so
    (for which host of its documents)."""

    label: str
    value: float
    unit: str
    plugin_id: str
    metric: str = ""
    host: str = ""


@dataclass(frozen=True)
class Sparkline:
    """The last hour of a headline number as SVG polylines, one per run without a gap."""

    label: str
    lines: list[str]
    low: float | None
    high: float | None


@dataclass
class Headlines:
    """The headline numbers of one host, filled document by document (first one wins)."""

    cpu: Reading | None = None
    memory: Reading | None = None
    disk: Reading | None = None
    temperatures: list[Reading] = field(default_factory=list)

    def add(
        self,
        plugin_id: str,
        plugin_name: str,
        metrics: list[MetricField],
        document: Mapping[str, Any],
        host: str,
    ) -> None:
        """Take the headline numbers ``document`` declares (through ``metrics``)."""
        names = {metric.name for metric in metrics}
        if self.disk is None and "partitions.*.percent" in names:
            root = _number(lookup(document, ROOT_DISK))
            if root is not None:
                self.disk = Reading("disk", root, "%", plugin_id, ROOT_DISK, host)
        for metric in metrics:
            value = _number(lookup(document, metric.name)) if "*" not in metric.name else None
            if value is None:
                continue
            slot = HEADLINES.get(metric.name)
            if slot is not None:
                if getattr(self, slot) is None:
                    reading = Reading(slot, value, metric.unit, plugin_id, metric.name, host)
                    setattr(self, slot, reading)
            elif metric.unit == "°C":
                self.temperatures.append(Reading(plugin_name, value, metric.unit, plugin_id))


def lookup(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a metrics document, None when absent."""
    node: Any = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def sparkline(label: str, values: list[float | None], *, percent: bool) -> Sparkline:
    """Polylines in a ``SPARK_WIDTH`` x ``SPARK_HEIGHT`` box; a None breaks the line.

    Percentages keep their 0-100 scale so hosts compare at a glance; anything
    else is scaled to its own range.
    """
    known = [v for v in values if v is not None]
    low, high = (min(known), max(known)) if known else (None, None)
    bottom, top = (0.0, 100.0) if percent else (low or 0.0, high or 0.0)
    if top - bottom < 1e-9:
        bottom, top = bottom - 1, top + 1
    last = max(1, len(values) - 1)
    lines: list[str] = []
    run: list[tuple[float, float]] = []
    for index, value in enumerate([*values, None]):
        if value is None:
            if len(run) == 1:
                # A lone sample still shows: a tick two pixels long, towards the inside.
                ((x, y),) = run
                lines.append(f"{max(0.0, x - 2):.1f},{y:.1f} {max(2.0, x):.1f},{y:.1f}")
            elif run:
                lines.append(" ".join(f"{x:.1f},{y:.1f}" for x, y in run))
            run = []
            continue
        x = index * SPARK_WIDTH / last
        y = (
            SPARK_HEIGHT
            - 1
            - (min(max(value, bottom), top) - bottom) / (top - bottom) * (SPARK_HEIGHT - 2)
        )
        run.append((x, y))
    return Sparkline(label, lines, low, high)


async def sparks(session: AsyncSession, headlines: Headlines, now: datetime) -> list[Sparkline]:
    """The last hour of CPU, memory and disk, each from the series its reading came from."""
    found = []
    for reading, label in (
        (headlines.cpu, "CPU"),
        (headlines.memory, "Memory"),
        (headlines.disk, "Disk"),
    ):
        if reading is None or not reading.metric:
            continue
        if reading.metric == ROOT_DISK:
            # The root filesystem is one item of the per-item metric (rolled up as such).
            by_item = await series_store.item_series(
                session,
                plugin_id=reading.plugin_id,
                path=["partitions", "*", "percent"],
                start=now - SPARK_SPAN,
                end=now,
                step=SPARK_STEP,
                host=reading.host,
                items=["/"],
            )
            points = by_item.get("/", [])
        else:
            points = await series_store.series(
                session,
                plugin_id=reading.plugin_id,
                path=reading.metric.split("."),
                start=now - SPARK_SPAN,
                end=now,
                step=SPARK_STEP,
                host=reading.host,
            )
        found.append(sparkline(label, [p.avg for p in points], percent=reading.unit == "%"))
    return found
