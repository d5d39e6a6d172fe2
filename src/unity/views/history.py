"""What a plugin recorded: its runs, its documents and the series of a declared metric.

A question these functions cannot answer (an unknown metric, a range too
long for its step) raises :class:`QueryError`, which the API answers with 422.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.runtime import PluginNotFoundError
from unity.storage import events, registry
from unity.storage import metrics as metric_store
from unity.storage import series as series_store
from unity.storage.models import Plugin, PluginEvent, PluginExecution, PluginMetric
from unity_sdk import MetricDisplay, MetricField, RunStatus

__all__ = [
    "MAX_ITEM_POINTS",
    "MAX_SERIES_ITEMS",
    "MAX_SERIES_POINTS",
    "ItemSeries",
    "Point",
    "QueryError",
    "Series",
    "executions",
    "metric_documents",
    "metric_series",
    "registered",
    "state_events",
]

MAX_SERIES_POINTS = 10_000
MAX_SERIES_ITEMS = 64
MAX_ITEM_POINTS = 100_000
DEFAULT_SPAN = timedelta(hours=24)
# A series without a step gets about this many points.
DEFAULT_POINTS = 300


def tier_step(step: int) -> int:
    """``step`` rounded up to whole minutes, or whole hours past an hour, so the
    rollup tiers can answer instead of a scan of every stored document."""
    for size in (3600, 60):
        if step >= size:
            return -(-step // size) * size
    return step


class QueryError(ValueError):
    """The question cannot be answered as asked; the message says why."""


@dataclass(frozen=True)
class Point:
    """One bucket of a series: avg/min/max of its samples (None without any)."""

    t: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True)
class ItemSeries:
    item: str
    points: list[Point]


@dataclass
class Series:
    """A declared metric over a time range, every bucket present."""

    plugin_id: str
    field: str
    unit: str
    kind: str
    display: str
    step: int
    start: datetime
    end: datetime
    host: str | None
    points: list[Point] = dataclasses.field(default_factory=list)
    items: list[ItemSeries] | None = None
    items_omitted: int = 0


async def registered(session: AsyncSession, plugin_id: str) -> Plugin:
    """The registry row of the plugin; ``PluginNotFoundError`` when there is none."""
    row = await registry.get_plugin(session, plugin_id)
    if row is None:
        raise PluginNotFoundError(plugin_id)
    return row


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise QueryError("start and end must be ordinary dates") from exc


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    start, end = _utc(start), _utc(end)
    try:
        (end or datetime.now(UTC)) - DEFAULT_SPAN
    except OverflowError as exc:
        raise QueryError("start and end must be ordinary dates") from exc
    if start and end and start >= end:
        raise QueryError("start must be before end")
    return start, end


async def executions(
    session: AsyncSession,
    plugin_id: str,
    *,
    status: RunStatus | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[PluginExecution], str | None]:
    """The plugin's runs, newest first, and the cursor of the next page."""
    await registered(session, plugin_id)
    return await metric_store.list_executions(
        session,
        plugin_id=plugin_id,
        status=None if status is None else status.value,
        limit=limit,
        cursor=cursor,
    )


async def state_events(
    session: AsyncSession, plugin_id: str, *, limit: int = 100
) -> list[PluginEvent]:
    """The plugin's state changes, newest first."""
    await registered(session, plugin_id)
    return await events.list_events(session, plugin_id=plugin_id, limit=limit)


async def metric_documents(
    session: AsyncSession,
    plugin_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    host: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[PluginMetric], str | None]:
    """The plugin's stored documents, newest first, and the cursor of the next page."""
    await registered(session, plugin_id)
    start, end = _range(start, end)
    return await metric_store.query_metrics(
        session, plugin_id=plugin_id, start=start, end=end, host=host, limit=limit, cursor=cursor
    )


def _points(points: Sequence[series_store.SeriesPoint]) -> list[Point]:
    return [Point(p.bucket, p.avg, p.min, p.max, p.count) for p in points]


def _declared(row: Plugin, name: str) -> MetricField:
    declared = {m["name"]: m for m in row.plugin_metadata.get("metrics", [])}
    if name not in declared:
        raise QueryError(f"plugin {row.id!r} declares no metric {name!r}")
    metric = MetricField.model_validate(declared[name])
    if not (metric.numeric or metric.shown_as is MetricDisplay.STATE):
        raise QueryError(f"metric {name!r} is not a numeric series")
    return metric


async def metric_series(
    session: AsyncSession,
    plugin_id: str,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    step: int | None = None,
    host: str | None = None,
    items: list[str] | None = None,
) -> Series:
    """A declared numeric or state metric as avg/min/max per ``step`` seconds.

    The range defaults to the last 24 hours and the step to ~300 points. A
    metric with ``*`` answers one series per item (``items`` picks some), at
    most ``MAX_SERIES_ITEMS`` of them and ``MAX_ITEM_POINTS`` points in all; a
    state metric counts ``true`` as 1 and ``false`` as 0.
    """
    row = await registered(session, plugin_id)
    start, end = _range(start, end)
    metric = _declared(row, name)
    state = metric.shown_as is MetricDisplay.STATE
    per_item = "*" in metric.path
    if items is not None and not per_item:
        raise QueryError(f"metric {name!r} has no items to pick")
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_SPAN
    span = (end - start).total_seconds()
    step = step or tier_step(max(1, int(span // DEFAULT_POINTS)))
    if span / step > MAX_SERIES_POINTS:
        raise QueryError(f"range/step gives more than {MAX_SERIES_POINTS} points")
    out = Series(
        plugin_id=plugin_id,
        field=name,
        unit=metric.unit,
        kind=metric.kind.value,
        display=metric.shown_as.value,
        step=step,
        start=start,
        end=end,
        host=host,
    )
    if not per_item:
        out.points = _points(
            await series_store.series(
                session,
                plugin_id=plugin_id,
                path=metric.path,
                start=start,
                end=end,
                step=step,
                host=host,
                booleans=state,
            )
        )
        return out
    found = await series_store.item_series(
        session,
        plugin_id=plugin_id,
        path=metric.path,
        start=start,
        end=end,
        step=step,
        host=host,
        items=items,
        booleans=state,
    )
    # Bounds the answer: a metric over thousands of items (processes, sockets)
    # would otherwise send every one of them at full resolution.
    room = max(1, min(MAX_SERIES_ITEMS, MAX_ITEM_POINTS * step // max(1, int(span))))
    names = sorted(found)
    out.items = [ItemSeries(n, _points(found[n])) for n in names[:room]]
    out.items_omitted = max(0, len(names) - room)
    return out
