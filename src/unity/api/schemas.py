"""Response and request bodies of the plugins API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

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


class HealthOut(BaseModel):
    status: str = Field(description="healthy, degraded, unhealthy or unknown")
    message: str = ""
    checked_at: datetime | None = None


class PluginSummary(BaseModel):
    id: str
    name: str
    version: str
    description: str
    category: str
    enabled: bool
    external: bool
    loaded: bool = Field(description="False when the plugin's code is not available now")
    state: str = Field(description="disabled, unknown, healthy, degraded, failing or stale")
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


class LoadFailureOut(BaseModel):
    name: str
    source: str
    error: str
    distribution: str | None = None


class PluginList(BaseModel):
    items: list[PluginSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")
    load_failures: list[LoadFailureOut] = Field(
        description="Plugins that failed to import or validate and were skipped"
    )


class RescanOut(BaseModel):
    added: list[str] = Field(description="Ids of the plugins loaded by this rescan (disabled)")
    load_failures: list[LoadFailureOut] = Field(
        description="New entry points that failed to import or validate"
    )


class RunResultOut(BaseModel):
    plugin_id: str
    status: str
    started_at: datetime
    duration_ms: float
    error: str | None
    metrics_count: int
    data: dict[str, Any] | None


class MetricOut(BaseModel):
    id: int
    host: str
    timestamp: datetime
    data: dict[str, Any]


class MetricList(BaseModel):
    plugin_id: str
    items: list[MetricOut]
    next_cursor: str | None


class SeriesPointOut(BaseModel):
    t: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int


class ItemSeriesOut(BaseModel):
    item: str = Field(description="What the metric's wildcards matched, joined by dots")
    points: list[SeriesPointOut]


class SeriesOut(BaseModel):
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


class ExecutionOut(BaseModel):
    id: int
    started_at: datetime
    completed_at: datetime | None
    status: str
    duration_ms: float | None
    error: str | None
    metrics_count: int
    trigger: str


class ExecutionList(BaseModel):
    plugin_id: str
    items: list[ExecutionOut]
    next_cursor: str | None
