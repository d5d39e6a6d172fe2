"""What the overview shows: every host with its headline numbers, every enabled plugin.

Headline numbers come from the latest document of each (plugin, host), found
by *declared metric name*, so an external plugin that declares the same names
lights up its host the same way: ``cpu.percent``, ``memory.percent``,
``max_used_percent`` (or ``disk.percent``), and any single (wildcard-free)
metric in °C as a temperature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.loader import LoadFailure
from unity.plugins.manager import PluginManager
from unity.storage import metrics as metric_store
from unity.storage import series as series_store
from unity.storage.types import utcnow
from unity.views.catalogue import PluginView, every_plugin, load_failures
from unity_sdk import MetricField, PluginState

__all__ = [
    "HostCard",
    "Overview",
    "Reading",
    "Sparkline",
    "build_overview",
    "count_states",
    "lookup",
    "sparkline",
]

HEADLINES = {
    "cpu.percent": "cpu",
    "memory.percent": "memory",
    "max_used_percent": "disk",
    "disk.percent": "disk",
}
SPARK_SPAN = timedelta(hours=1)
SPARK_STEP = 60
SPARK_WIDTH = 120
SPARK_HEIGHT = 28


@dataclass(frozen=True)
class Reading:
    """One headline number: what it is, its value and unit, which plugin said so."""

    label: str
    value: float
    unit: str
    plugin_id: str
    metric: str = ""


@dataclass(frozen=True)
class Sparkline:
    """The last hour of a headline number as SVG polylines, one per run without a gap."""

    label: str
    lines: list[str]
    low: float | None
    high: float | None


@dataclass
class HostCard:
    name: str
    updated_at: datetime
    stale: bool = False
    cpu: Reading | None = None
    memory: Reading | None = None
    disk: Reading | None = None
    temperatures: list[Reading] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    sparks: list[Sparkline] = field(default_factory=list)


@dataclass
class Overview:
    hosts: list[HostCard]
    plugins: list[PluginView]  # the enabled ones
    disabled: int
    load_failures: list[LoadFailure]
    counts: dict[PluginState, int]  # every state, most of them 0


def lookup(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a metrics document, None when absent."""
    node: Any = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def count_states(plugins: list[PluginView]) -> dict[PluginState, int]:
    """How many plugins are in each state, every state present."""
    counts = dict.fromkeys(PluginState, 0)
    for plugin in plugins:
        counts[plugin.state] += 1
    return counts


def _headlines(
    card: HostCard, plugin: PluginView, metrics: list[MetricField], doc: Mapping[str, Any]
) -> None:
    for metric in metrics:
        value = _number(lookup(doc, metric.name)) if "*" not in metric.name else None
        if value is None:
            continue
        slot = HEADLINES.get(metric.name)
        if slot is not None and getattr(card, slot) is None:
            setattr(card, slot, Reading(slot, value, metric.unit, plugin.id, metric.name))
        elif metric.unit == "°C":
            card.temperatures.append(Reading(plugin.name, value, metric.unit, plugin.id))


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


async def _sparks(session: AsyncSession, card: HostCard, now: datetime) -> list[Sparkline]:
    sparks = []
    for reading, label in ((card.cpu, "CPU"), (card.memory, "Memory"), (card.disk, "Disk")):
        if reading is None or not reading.metric:
            continue
        points = await series_store.series(
            session,
            plugin_id=reading.plugin_id,
            path=reading.metric.split("."),
            start=now - SPARK_SPAN,
            end=now,
            step=SPARK_STEP,
            host=card.name,
        )
        values = [p.avg for p in points]
        sparks.append(sparkline(label, values, percent=reading.unit == "%"))
    return sparks


async def build_overview(session: AsyncSession, manager: PluginManager) -> Overview:
    """Every host that reported, every enabled plugin, and how many plugins are in each state.

    A host is stale when no plugin reported from it for ``stale_after_missed``
    of the shortest interval among its plugins (at least 30 seconds).
    """
    plugins = await every_plugin(session, manager)
    by_id = {p.id: p for p in plugins}
    now = utcnow()
    hosts: dict[str, HostCard] = {}
    intervals: dict[str, float] = {}
    for latest in await metric_store.latest_documents(session):
        plugin = by_id.get(latest.plugin_id)
        if plugin is None or not plugin.enabled:
            continue
        stamp = _aware(latest.timestamp)
        card = hosts.setdefault(latest.host, HostCard(latest.host, stamp))
        card.updated_at = max(card.updated_at, stamp)
        card.plugins.append(plugin.id)
        declared = plugin.declared
        interval = plugin.interval or (declared.default_interval if declared else 60.0)
        intervals[latest.host] = min(intervals.get(latest.host, interval), interval)
        if declared is not None:
            _headlines(card, plugin, declared.metrics, latest.data)
    missed = manager.settings.stale_after_missed
    for card in hosts.values():
        limit = timedelta(seconds=intervals[card.name] * missed)
        card.stale = now - card.updated_at > max(limit, timedelta(seconds=30))
        card.sparks = await _sparks(session, card, now)
    enabled = [p for p in plugins if p.enabled]
    return Overview(
        hosts=sorted(hosts.values(), key=lambda c: c.name),
        plugins=enabled,
        disabled=len(plugins) - len(enabled),
        load_failures=list(load_failures(manager)),
        counts=count_states(plugins),
    )
