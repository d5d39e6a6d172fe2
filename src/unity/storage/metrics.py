"""Queries over collected metrics, executions and the latest-value table.

Plain functions with keyword-only arguments; each takes the session it runs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    "finish_run",
    "insert_samples",
    "latest_documents",
    "list_executions",
    "purge_older_than",
    "query_metrics",
    "record_execution",
    "series",
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
) -> None:
    """Record one run: its execution row, its documents, and the plugin's run state."""
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


def _numeric_value(dialect: str, path: Sequence[str]) -> ColumnElement[Any]:
    """The field as a float, NULL where it is missing or not a number."""
    if dialect == "postgresql":
        node = PluginMetric.data[tuple(path)]
        is_number = func.jsonb_typeof(node) == "number"
    else:
        json_path = "$" + "".join(f'."{part}"' for part in path)
        is_number = func.json_type(PluginMetric.data, json_path).in_(("integer", "real"))
    return case((is_number, PluginMetric.data[tuple(path)].as_float()), else_=None)


async def series(
    session: AsyncSession,
    *,
    plugin_id: str,
    path: Sequence[str],
    start: datetime,
    end: datetime,
    step: int,
    host: str | None = None,
) -> list[SeriesPoint]:
    """Average, min, max and count of one numeric field per ``step`` seconds."""
    dialect = _dialect(session)
    value = _numeric_value(dialect, path)
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
    return points


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
