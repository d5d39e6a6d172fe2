"""Rendering declared plugin metrics in the Prometheus text format.

Each declared metric becomes one family named ``unity_<plugin>_<path>``
(``-`` and ``.`` become ``_``; ``*`` segments become labels named after the
segment before them). Values come from the latest document per plugin and
host, so a scrape reads one small table, never the history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.manager import PluginManager
from unity.storage import metrics as metric_store
from unity.storage.models import LatestMetric
from unity_sdk import MetricField, MetricKind, iter_metric_values

__all__ = ["metric_families", "render_exposition"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _sanitize(text: str) -> str:
    return _INVALID.sub("_", text)


def family_name(plugin_id: str, field: MetricField) -> str:
    parts = [p for p in field.path if p != "*"]
    return _sanitize(f"unity_{plugin_id}_{'_'.join(parts)}").lower()


def star_labels(field: MetricField) -> list[str]:
    labels: list[str] = []
    for index, part in enumerate(field.path):
        if part == "*":
            base = _sanitize(field.path[index - 1]) if index else "key"
            name = base if base not in labels and base != "host" else f"{base}_{index}"
            labels.append(name)
    return labels


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def metric_families(
    plugin_id: str, fields: Sequence[MetricField], latest: Iterable[LatestMetric]
) -> Iterator[Metric]:
    rows = list(latest)
    for field in fields:
        name = family_name(plugin_id, field)
        labels = ["host", *star_labels(field)]
        help_text = field.description or field.name
        if field.unit:
            help_text = f"{help_text} ({field.unit})"
        family: Metric
        if field.kind is MetricKind.INFO:
            family = InfoMetricFamily(name, help_text, labels=labels)
            for row in rows:
                for keys, value in iter_metric_values(field, row.data):
                    family.add_metric([row.host, *keys], {"value": str(value)})
        else:
            cls = CounterMetricFamily if field.kind is MetricKind.COUNTER else GaugeMetricFamily
            family = cls(name, help_text, labels=labels)
            for row in rows:
                for keys, value in iter_metric_values(field, row.data):
                    number = _number(value)
                    if number is not None:
                        family.add_metric([row.host, *keys], number)
        if family.samples:
            yield family


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def render_exposition(session: AsyncSession, manager: PluginManager) -> bytes:
    latest = await metric_store.latest_documents(session)
    by_plugin: dict[str, list[LatestMetric]] = {}
    for row in latest:
        by_plugin.setdefault(row.plugin_id, []).append(row)
    families: list[Metric] = []
    for plugin_id, rows in sorted(by_plugin.items()):
        managed = manager.plugins.get(plugin_id)
        if managed is not None:
            families.extend(metric_families(plugin_id, managed.metadata.metrics, rows))
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(families))
    return generate_latest(manager.stats.registry) + generate_latest(snapshot)
