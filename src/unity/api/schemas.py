"""Response and request bodies of the plugins API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import HealthState, PluginState, RunStatus

__all__ = [
    "ExecutionList",
    "ExecutionOut",
    "HealthOut",
    "ItemSeriesOut",
    "LoadFailureOut",
    "MetricList",
    "MetricOut",
    "PluginDetail",
    "PluginList",
    "PluginSummary",
    "RescanOut",
    "RunResultOut",
    "SeriesOut",
    "SeriesPointOut",
]


class _Out(BaseModel):
    # Built from the read model's records (unity.views) by attribute.
    model_config = ConfigDict(from_attributes=True)


class HealthOut(_Out):
    status: HealthState = Field(
        description="What the plugin's health check (or report) said; not_applicable "
        "means there is nothing to monitor on that host"
    )
    message: str = ""
    checked_at: datetime | None = None


class PluginSummary(_Out):
    id: str
    name: str
    version: str
    description: str
    category: str
    enabled: bool
    external: bool
    loaded: bool = Field(description="False when the plugin's code is not available now")
    state: PluginState = Field(
        description="The one state of the plugin, from whether it is loaded and enabled, "
        "still reports, its recent runs and its health"
    )
    health: HealthOut
    interval: float | None = Field(description="Seconds between scheduled runs")
    run_count: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None


class PluginDetail(PluginSummary):
    author: str
    metadata: dict[str, Any]
    config: dict[str, Any] = Field(description="Current config; secret fields are masked")
    consecutive_failures: int
    reload_error: str | None = None
    last_seen_at: datetime | None = Field(
        default=None, description="External plugins: when it last reported"
    )
    health_details: dict[str, Any] | None = None


class LoadFailureOut(_Out):
    name: str
    source: str
    error: str
    distribution: str | None = None


class PluginList(_Out):
    items: list[PluginSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")
    load_failures: list[LoadFailureOut] = Field(
        description="Plugins that failed to import or validate and were skipped"
    )


class RescanOut(_Out):
    added: list[str] = Field(description="Ids of the plugins loaded by this rescan (disabled)")
    load_failures: list[LoadFailureOut] = Field(
        description="New entry points that failed to import or validate"
    )


class RunResultOut(_Out):
    plugin_id: str
    status: RunStatus
    started_at: datetime
    duration_ms: float
    error: str | None
    metrics_count: int
    data: dict[str, Any] | None


class MetricOut(_Out):
    id: int
    host: str
    timestamp: datetime
    data: dict[str, Any]


class MetricList(_Out):
    plugin_id: str
    items: list[MetricOut]
    next_cursor: str | None


class SeriesPointOut(_Out):
    t: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int


class ItemSeriesOut(_Out):
    item: str = Field(description="What the metric's wildcards matched, joined by dots")
    points: list[SeriesPointOut]


class SeriesOut(_Out):
    plugin_id: str
    field: str
    unit: str
    kind: str
    display: str = Field(description="How a dashboard shows it: chart, fact or state")
    step: int
    start: datetime
    end: datetime
    host: str | None
    points: list[SeriesPointOut] = Field(
        description="Every bucket of the range; one without a sample has null values, count 0"
    )
    items: list[ItemSeriesOut] | None = Field(
        default=None, description="Per-item metrics (a * in field): one series per item"
    )
    items_omitted: int = Field(default=0, description="Items left out past the item limit")


class ExecutionOut(_Out):
    id: int
    started_at: datetime
    completed_at: datetime | None
    status: RunStatus
    duration_ms: float | None
    error: str | None
    metrics_count: int
    trigger: str


class EventOut(_Out):
    """A change of the plugin's state, with what caused it."""

    at: datetime
    previous: PluginState
    current: PluginState
    message: str


class EventList(_Out):
    plugin_id: str
    items: list[EventOut]


class ExecutionList(_Out):
    plugin_id: str
    items: list[ExecutionOut]
    next_cursor: str | None
