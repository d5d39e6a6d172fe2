"""Rendering declared plugin metrics in the Prometheus text format.

Each declared metric becomes one family, named, labelled and scaled by
:func:`unity_sdk.prometheus_series` (the rule is described there
and in docs/plugins/contract.md). Values come from the latest document per
plugin and host, so a scrape reads one small table, never the history.

A plugin's metadata comes from the catalogue (:mod:`unity.views.catalogue`):
its loaded class for in-hub plugins, its registry row for external plugins
(which the hub never loads); a plugin whose code is no longer installed is
left out. Families are named after the metadata's id, so the instances of a
catalogue plugin on agents' hosts (``system-info@nas``, whose metadata id is
``system-info``) share the families of the hub's own ``system-info``, told
apart by their ``host`` label (the host id). A series (family and labels)
already given by an earlier member of the family is left out, as is a family
whose name is already on the page -- the hub's own counters, or another
plugin's family (plugin ids ``a`` and ``a-b`` can meet) -- or whose members
declare it differently; each is logged, so the page always parses.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from unity.views import every_plugin
from unity.views.alerts import firing_by_severity
from unity_sdk import (
    AlertSeverity,
    MetricField,
    MetricKind,
    PrometheusSeries,
    iter_metric_values,
    prometheus_series,
)

__all__ = ["metric_families", "render_exposition"]

log = logging.getLogger(__name__)

ALERT_SEVERITIES = [s.value for s in AlertSeverity]

# Clashes already logged per hub, so a scrape every few seconds logs each once.
_reported: weakref.WeakKeyDictionary[object, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _report_clash(hub: object | None, plugin_id: str, name: str) -> None:
    reported = _reported.setdefault(hub, set()) if hub is not None else set()
    if (plugin_id, name) not in reported:
        reported.add((plugin_id, name))
        log.warning(
            "plugin %s: Prometheus family %s is already on /metrics; left out", plugin_id, name
        )


def _new_family(series: PrometheusSeries, kind: MetricKind) -> Metric:
    labels = list(series.labels)
    if kind is MetricKind.INFO:
        return InfoMetricFamily(series.name.removesuffix("_info"), series.help, labels=labels)
    cls = CounterMetricFamily if kind is MetricKind.COUNTER else GaugeMetricFamily
    return cls(series.name, series.help, labels=labels)


def metric_families(
    family_id: str,
    members: Sequence[tuple[str, Sequence[MetricField], Iterable[LatestMetric]]],
    taken: set[str] | None = None,
    hub: object | None = None,
) -> Iterator[Metric]:
    """The families of the declared metrics of ``family_id``'s plugins with samples.

    ``members`` are ``(plugin id, declared metrics, latest rows)`` of every
    plugin exported under ``family_id``: the plugin of that id and its instances
    on agents' hosts, in that order. A member declaring a family another way
    (another kind or labels) is left out of it, and a series an earlier member
    gave is not given twice. ``taken`` holds the names already on the page; each
    family yielded adds its name, and a family whose name is taken is skipped
    (logged once per ``hub``).
    """
    taken = set() if taken is None else taken
    built: dict[str, tuple[PrometheusSeries, MetricKind, Metric, set[tuple[str, ...]]]] = {}
    for plugin_id, fields, latest in members:
        rows = list(latest)
        for field in fields:
            series = prometheus_series(family_id, field)
            entry = built.get(series.name)
            if entry is None:
                family = _new_family(series, field.kind)
                entry = built[series.name] = (series, field.kind, family, set())
            elif (entry[1], entry[0].labels) != (field.kind, series.labels):
                _report_clash(hub, plugin_id, series.name)
                continue
            _add_samples(field, series, entry[2], entry[3], rows)
    for name, (_, _, family, _) in built.items():
        if not family.samples:
            continue
        if name in taken:
            _report_clash(hub, family_id, name)
            continue
        taken.add(name)
        yield family


def _add_samples(
    field: MetricField,
    series: PrometheusSeries,
    family: Metric,
    given: set[tuple[str, ...]],
    rows: Iterable[LatestMetric],
) -> None:
    """Add the values of ``field`` in ``rows`` to ``family``, each label set once."""
    for row in rows:
        for keys, value in iter_metric_values(field, row.data):
            labels = (row.host, *keys)
            if labels in given:
                continue
            if field.kind is MetricKind.INFO:
                assert isinstance(family, InfoMetricFamily)
                family.add_metric(list(labels), {"value": str(value)})
            else:
                number = _number(value)
                if number is None:
                    continue
                assert isinstance(family, CounterMetricFamily | GaugeMetricFamily)
                family.add_metric(list(labels), series.convert(number))
            given.add(labels)


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def _declared_metrics(
    session: AsyncSession, manager: PluginManager
) -> dict[str, tuple[str, Sequence[MetricField]]]:
    """The family id (the metadata's id) and declared metrics of every plugin that
    runs: in the hub, or external (a plugin instance on an agent's host too)."""
    return {
        plugin.id: (plugin.declared.id, plugin.declared.metrics)
        for plugin in await every_plugin(session, manager)
        if plugin.declared is not None and (plugin.loaded or plugin.external)
    }


async def _firing_alerts(session: AsyncSession) -> Metric:
    """``unity_alerts_firing{severity}``: firing alerts, from the shared tables (so
    every hub on one database reports the same numbers)."""
    family = GaugeMetricFamily(
        "unity_alerts_firing", "Alerts firing now, by severity", labels=["severity"]
    )
    counts = await firing_by_severity(session)
    for severity in ALERT_SEVERITIES:
        family.add_metric([severity], counts.get(severity, 0))
    return family


def _names_on(page: bytes) -> set[str]:
    """Every family and sample name of an exposition page."""
    names: set[str] = set()
    for line in page.decode().splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            names.add(line.split(" ", 3)[2])
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


async def render_exposition(
    session: AsyncSession,
    manager: PluginManager,
    *,
    extra: Sequence[CollectorRegistry] = (),
) -> bytes:
    """The page: the hub's own counters (the manager's and ``extra`` registries,
    e.g. notification deliveries), then every plugin's declared metrics."""
    latest = await metric_store.latest_documents(session)
    by_plugin: dict[str, list[LatestMetric]] = {}
    for row in latest:
        by_plugin.setdefault(row.plugin_id, []).append(row)
    declared: Mapping[str, tuple[str, Sequence[MetricField]]] = await _declared_metrics(
        session, manager
    )
    own = generate_latest(manager.stats.registry) + b"".join(
        generate_latest(registry) for registry in extra
    )
    taken = _names_on(own)
    # The hub's own families come first: a plugin family of the same name is left out.
    families: list[Metric] = [await _firing_alerts(session)]
    taken.add(families[0].name)
    # A plugin's id sorts before its instances' ("system-info" < "system-info@nas").
    members: dict[str, list[tuple[str, Sequence[MetricField], list[LatestMetric]]]] = {}
    for plugin_id, rows in sorted(by_plugin.items()):
        family_id, fields = declared.get(plugin_id, (plugin_id, ()))
        if fields:
            members.setdefault(family_id, []).append((plugin_id, fields, rows))
    for family_id, group in sorted(members.items()):
        families.extend(metric_families(family_id, group, taken, manager.stats))
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(families))
    return own + generate_latest(snapshot)
