"""Queries over collected metrics, executions and the latest-value table.

Plain functions with keyword-only arguments; each takes the session it runs in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Float,
    Insert,
    Select,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from unity.storage.models import Base, LatestMetric, Plugin, PluginExecution, PluginMetric
from unity.storage.pagination import decode_cursor, encode_cursor

__all__ = [
    "MetricSample",
    "SeriesPoint",
    "fill_buckets",
    "finish_run",
    "insert_samples",
    "item_series",
    "latest_documents",
    "list_executions",
    "purge_older_than",
    "query_metrics",
    "record_execution",
    "series",
    "walk",
]


@dataclass(frozen=True)
class MetricSample:
    """One document to store: which plugin, which host, when."""

    plugin_id: str
    host: str
    timestamp: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class SeriesPoint:
    bucket: datetime
    avg: float | None
    min: float | None
    max: float | None
    count: int


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_METRICS = _table(PluginMetric)
_EXECUTIONS = _table(PluginExecution)
_LATEST = _table(LatestMetric)


@cache
def _latest_upsert(dialect: str) -> Insert:
    """One upsert of the latest-value row, built once per dialect, run with many rows."""
    upsert_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = upsert_insert(_LATEST)
    return stmt.on_conflict_do_update(
        index_elements=["plugin_id", "host"],
        set_={"timestamp": stmt.excluded.timestamp, "data": stmt.excluded.data},
        where=_LATEST.c.timestamp <= stmt.excluded.timestamp,
    )


async def insert_samples(session: AsyncSession, samples: Sequence[MetricSample]) -> None:
    """Store samples and move the latest-value rows forward, in the caller's transaction."""
    if not samples:
        return
    rows: list[dict[str, Any]] = [
        {"plugin_id": s.plugin_id, "host": s.host, "timestamp": s.timestamp, "data": s.data}
        for s in samples
    ]
    # Core statements on the tables: no ORM bookkeeping on the hottest write path.
    await session.execute(insert(_METRICS), rows)
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["plugin_id"], row["host"])
        if key not in newest or row["timestamp"] >= newest[key]["timestamp"]:
            newest[key] = row
    await session.execute(_latest_upsert(_dialect(session)), list(newest.values()))


async def record_execution(
    session: AsyncSession,
    *,
    plugin_id: str,
    started_at: datetime,
    completed_at: datetime | None,
    status: str,
    duration_ms: float | None,
    error: str | None = None,
    metrics_count: int = 0,
    trigger: str = "schedule",
) -> None:
    await session.execute(
        insert(_EXECUTIONS).values(
            plugin_id=plugin_id,
            started_at=started_at,
            completed_at=completed_at,
            status=status,
            duration_ms=duration_ms,
            error=error,
            metrics_count=metrics_count,
            trigger=trigger,
        )
    )


async def finish_run(
    session: AsyncSession,
    *,
    plugin_id: str,
    started_at: datetime,
    completed_at: datetime,
    status: str,
    duration_ms: float,
    error: str | None,
    samples: Sequence[MetricSample],
    state: str,
    consecutive_failures: int,
    trigger: str,
    health: dict[str, Any] | None = None,
) -> None:
    """Record one run: its execution row, its documents, the plugin's run state and,
    when the run assessed it, its health (``health_status``, ``health_message``...)."""
    await record_execution(
        session,
        plugin_id=plugin_id,
        started_at=started_at,
        completed_at=completed_at,
        status=status,
        duration_ms=duration_ms,
        error=error,
        metrics_count=len(samples),
        trigger=trigger,
    )
    await insert_samples(session, samples)
    values: dict[str, Any] = {
        "last_run_at": started_at,
        "run_count": Plugin.run_count + 1,
        "state": state,
        "consecutive_failures": consecutive_failures,
        "last_error": error,
        "updated_at": completed_at,
    }
    if error is None:
        values["last_success_at"] = completed_at
    values.update(health or {})
    await session.execute(update(Plugin).where(Plugin.id == plugin_id).values(**values))


def _keyset(stmt: Select[Any], time_col: Any, id_col: Any, cursor: str | None) -> Select[Any]:
    if cursor:
        stamp, row_id = decode_cursor(cursor)
        stmt = stmt.where(or_(time_col < stamp, and_(time_col == stamp, id_col < row_id)))
    return stmt.order_by(time_col.desc(), id_col.desc())


async def query_metrics(
    session: AsyncSession,
    *,
    plugin_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    host: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[PluginMetric], str | None]:
    """Newest first; returns the page and the cursor of the next page (or None)."""
    stmt = select(PluginMetric).where(PluginMetric.plugin_id == plugin_id)
    if host is not None:
        stmt = stmt.where(PluginMetric.host == host)
    if start is not None:
        stmt = stmt.where(PluginMetric.timestamp >= start)
    if end is not None:
        stmt = stmt.where(PluginMetric.timestamp < end)
    stmt = _keyset(stmt, PluginMetric.timestamp, PluginMetric.id, cursor).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].timestamp, rows[-1].id)
    return rows, next_cursor


async def list_executions(
    session: AsyncSession,
    *,
    plugin_id: str,
    status: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[PluginExecution], str | None]:
    stmt = select(PluginExecution).where(PluginExecution.plugin_id == plugin_id)
    if status is not None:
        stmt = stmt.where(PluginExecution.status == status)
    stmt = _keyset(stmt, PluginExecution.started_at, PluginExecution.id, cursor).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].started_at, rows[-1].id)
    return rows, next_cursor


def _epoch(dialect: str, column: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", column)
    # Whole seconds of the stored text: strftime would round the fraction first,
    # moving the last half millisecond of a bucket into the next one.
    return cast(func.strftime("%s", func.substr(column, 1, 19)), Float)


def _numeric_value(dialect: str, path: Sequence[str], *, booleans: bool) -> ColumnElement[Any]:
    """The field as a float, NULL where it is missing or not a number.

    With ``booleans``, ``true`` and ``false`` count as 1 and 0 (state metrics).
    """
    node = PluginMetric.data[tuple(path)]
    if dialect == "postgresql":
        kind = func.jsonb_typeof(node)
        is_number = kind == "number"
        is_boolean = kind == "boolean"
    else:
        json_path = "$" + "".join(f'."{part}"' for part in path)
        kind = func.json_type(PluginMetric.data, json_path)
        is_number = kind.in_(("integer", "real"))
        is_boolean = kind.in_(("true", "false"))
    if booleans:
        boolean = case((node.as_boolean(), 1.0), else_=0.0)
        return case((is_number, node.as_float()), (is_boolean, boolean), else_=None)
    return case((is_number, node.as_float()), else_=None)


async def series(
    session: AsyncSession,
    *,
    plugin_id: str,
    path: Sequence[str],
    start: datetime,
    end: datetime,
    step: int,
    host: str | None = None,
    booleans: bool = False,
) -> list[SeriesPoint]:
    """Average, min, max and count of one numeric field per ``step`` seconds."""
    dialect = _dialect(session)
    value = _numeric_value(dialect, path, booleans=booleans)
    bucket = func.floor(_epoch(dialect, PluginMetric.timestamp) / step) * step
    stmt = (
        select(
            bucket.label("bucket"),
            func.avg(value),
            func.min(value),
            func.max(value),
            func.count(value),
        )
        .where(
            PluginMetric.plugin_id == plugin_id,
            PluginMetric.timestamp >= start,
            PluginMetric.timestamp < end,
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    if host is not None:
        stmt = stmt.where(PluginMetric.host == host)
    result = await session.execute(stmt)
    points = []
    for bucket_epoch, avg, lo, hi, count in result.all():
        stamp = datetime.fromtimestamp(float(bucket_epoch), tz=start.tzinfo)
        points.append(
            SeriesPoint(
                bucket=stamp,
                avg=float(avg) if avg is not None else None,
                min=float(lo) if lo is not None else None,
                max=float(hi) if hi is not None else None,
                count=int(count),
            )
        )
    return fill_buckets(points, start=start, end=end, step=step)


def fill_buckets(
    points: Sequence[SeriesPoint], *, start: datetime, end: datetime, step: int
) -> list[SeriesPoint]:
    """Every bucket of the range, those without a sample as nulls with a count of 0.

    A chart draws a null as a gap; leaving the bucket out would draw a straight
    line across the time nothing was collected.
    """
    found = {int(p.bucket.timestamp()): p for p in points}
    first = math.floor(start.timestamp() / step) * step
    filled = []
    for epoch in range(first, math.ceil(end.timestamp()), step):
        point = found.get(epoch)
        if point is None:
            stamp = datetime.fromtimestamp(epoch, tz=start.tzinfo)
            point = SeriesPoint(bucket=stamp, avg=None, min=None, max=None, count=0)
        filled.append(point)
    return filled


def _number(value: Any, *, booleans: bool) -> float | None:
    if isinstance(value, bool):
        return float(value) if booleans else None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def walk(node: Any, path: Sequence[str], label: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(item, value) for every match of ``path`` under ``node``; ``*`` names the item.

    ``*`` matches every key of a mapping and every index of a list; the item
    is what the wildcards matched, joined by dots ("" without wildcards).
    """
    if not path:
        yield ".".join(label), node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, Mapping):
            for key, child in node.items():
                yield from walk(child, rest, (*label, str(key)))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, rest, (*label, str(index)))
    elif isinstance(node, Mapping) and head in node:
        yield from walk(node[head], rest, label)


def _expand(
    node: Any, path: Sequence[str], label: tuple[str, ...], *, booleans: bool
) -> Iterator[tuple[str, float]]:
    for item, value in walk(node, path, label):
        number = _number(value, booleans=booleans)
        if number is not None:
            yield item, number


async def item_series(
    session: AsyncSession,
    *,
    plugin_id: str,
    path: Sequence[str],
    start: datetime,
    end: datetime,
    step: int,
    host: str | None = None,
    items: Sequence[str] | None = None,
    booleans: bool = False,
) -> dict[str, list[SeriesPoint]]:
    """One bucketed series per item of a per-item metric (a path with ``*``).

    The item is what the wildcards matched, joined by dots (``sda.read`` for
    ``disks.*.*.bytes``). The database hands over only the sub-document under
    the fixed prefix of the path; the wildcards are walked here, because
    ``*`` matches list items as well as mapping keys, which neither SQLite's
    ``json_each`` nor PostgreSQL's ``jsonb_each`` does alike.
    """
    star = path.index("*")
    prefix, rest = tuple(path[:star]), path[star:]
    document = PluginMetric.data[prefix] if prefix else PluginMetric.data
    stmt = select(PluginMetric.timestamp, document).where(
        PluginMetric.plugin_id == plugin_id,
        PluginMetric.timestamp >= start,
        PluginMetric.timestamp < end,
    )
    if host is not None:
        stmt = stmt.where(PluginMetric.host == host)
    wanted = set(items) if items is not None else None
    buckets: dict[str, dict[int, list[float]]] = {}
    for stamp, node in (await session.execute(stmt)).all():
        aware = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
        epoch = math.floor(aware.timestamp() / step) * step
        for item, value in _expand(node, rest, (), booleans=booleans):
            if wanted is None or item in wanted:
                buckets.setdefault(item, {}).setdefault(epoch, []).append(value)
    out: dict[str, list[SeriesPoint]] = {}
    for item in sorted(buckets):
        points = [
            SeriesPoint(
                bucket=datetime.fromtimestamp(epoch, tz=start.tzinfo),
                avg=sum(values) / len(values),
                min=min(values),
                max=max(values),
                count=len(values),
            )
            for epoch, values in sorted(buckets[item].items())
        ]
        out[item] = fill_buckets(points, start=start, end=end, step=step)
    return out


async def latest_documents(
    session: AsyncSession, *, plugin_ids: Sequence[str] | None = None
) -> list[LatestMetric]:
    stmt = select(LatestMetric).order_by(LatestMetric.plugin_id, LatestMetric.host)
    if plugin_ids is not None:
        stmt = stmt.where(LatestMetric.plugin_id.in_(plugin_ids))
    return list((await session.scalars(stmt)).all())


async def purge_older_than(
    session: AsyncSession, *, plugin_id: str, cutoff: datetime
) -> tuple[int, int]:
    """Delete metrics and executions older than ``cutoff``; return both counts."""
    metrics = await session.execute(
        delete(PluginMetric).where(
            PluginMetric.plugin_id == plugin_id, PluginMetric.timestamp < cutoff
        )
    )
    executions = await session.execute(
        delete(PluginExecution).where(
            PluginExecution.plugin_id == plugin_id, PluginExecution.started_at < cutoff
        )
    )
    return _rowcount(metrics), _rowcount(executions)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
