"""Checking a plugin as the hub would, and running it once, for authors.

``check`` applies the hub's own rule for plugin classes
(:func:`unity_sdk.check_plugin_class`: hooks, metadata, config schema, the
hub's reserved config keys, Prometheus name collisions), lists the Prometheus
family of each declared metric and adds advice (metrics without units, config
fields without descriptions). ``run_once`` validates a config by the hub's
rule (:func:`unity_sdk.validate_config`), collects once with the plugin's
timeout, checks the document against the declared metrics and warns about
numbers no metric declares (they are stored but never charted or exported).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from unity.authoring.source import Candidate
from unity_sdk import (
    ConfigError,
    PluginBase,
    PluginMetadata,
    check_document,
    check_plugin_class,
    error_lines,
    prometheus_advice,
    prometheus_series,
    undeclared_numbers,
    validate_config,
)

__all__ = ["CheckReport", "RunReport", "check", "run_once"]


@dataclass
class CheckReport:
    name: str
    metadata: PluginMetadata | None = None
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    # Declared metric -> its family on the hub's /metrics, as ``name{labels}``.
    prometheus: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class RunReport:
    document: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def check(candidate: Candidate) -> CheckReport:
    report = CheckReport(candidate.entry_point or candidate.cls.__name__)
    try:
        metadata = check_plugin_class(candidate.cls, expected_id=candidate.entry_point)
    except Exception as exc:
        report.problems.append(f"{type(exc).__name__}: {exc}")
        return report
    report.metadata = metadata
    report.name = metadata.id
    report.prometheus = {
        metric.name: prometheus_series(metadata.id, metric).describe()
        for metric in metadata.metrics
    }
    if not metadata.metrics:
        report.advice.append("declares no metrics: charts and /metrics will not show anything")
    for metric in metadata.metrics:
        series = prometheus_series(metadata.id, metric)
        report.advice.extend(
            f"metric {metric.name!r}: Prometheus name {series.name} {problem} "
            "(promtool check metrics warns about it)"
            for problem in prometheus_advice(series)
        )
        if metric.numeric and not metric.unit:
            report.advice.append(f"metric {metric.name!r} has no unit")
        if not metric.description:
            report.advice.append(f"metric {metric.name!r} has no description")
    properties = metadata.config_json_schema().get("properties", {})
    for name, prop in properties.items():
        if isinstance(prop, dict) and not prop.get("description"):
            report.advice.append(f"config field {name!r} has no description")
    if not metadata.description:
        report.advice.append("metadata has no description")
    return report


async def run_once(cls: type[PluginBase[Any]], config: dict[str, Any]) -> RunReport:
    """Validate ``config``, collect once and check the document."""
    report = RunReport()
    metadata = check_plugin_class(cls)
    try:
        validated = validate_config(metadata, config)
    except ConfigError as exc:
        report.problems.extend(f"config {line}" for line in error_lines(exc.errors))
        return report
    plugin = cls(config=validated.plugin)
    started = time.perf_counter()
    await plugin.on_enable()
    try:
        document = await asyncio.wait_for(plugin.collect_data(), metadata.timeout)
    except TimeoutError:
        report.problems.append(f"collect_data did not finish within {metadata.timeout:g}s")
        return report
    except Exception as exc:
        report.problems.append(f"collect_data raised {type(exc).__name__}: {exc}")
        return report
    finally:
        report.duration_ms = (time.perf_counter() - started) * 1000
        await plugin.on_disable()
    report.document = document if isinstance(document, dict) else None
    report.problems.extend(check_document(metadata, document))
    if report.document is not None:
        report.warnings.extend(
            f"{path!r} is a number no metric declares: it will not be charted or exported"
            for path in undeclared_numbers(metadata, report.document)
        )
    return report
