"""Writes and queries of collected documents, executions and the latest-value table.

Series (values along a metric's path, bucketed) are in :mod:`unity.storage.series`.

Plain functions with keyword-only arguments; each takes the session (or Core
connection, for the writes) it runs in. The write statements are built once.
Runs and metric batches are written by the group-commit writer
(:mod:`unity.storage.writer`), with statements of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    and_,
    insert,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from unity.storage.dialects import dialect_insert
from unity.storage.models import LatestMetric, PluginExecution, PluginMetric, table_of
from unity.storage.pagination import decode_cursor, encode_cursor

__all__ = [
    "MetricSample",
    "insert_samples",
    "latest_documents",
    "latest_upsert",
    "list_executions",
    "query_metrics",
    "record_execution",
    "retention_cutoff",
]


@dataclass(frozen=True)
class MetricSample:
    """One document to store: which plugin, which host, when."""

    plugin_id: str
    host: str
    timestamp: datetime
    data: dict[str, Any]


# Where the writes run: an ORM session, or a Core connection on the hot paths.
Executor = AsyncSession | AsyncConnection


def _dialect(executor: Executor) -> str:
    if isinstance(executor, AsyncConnection):
        return executor.dialect.name
    return executor.get_bind().dialect.name


_METRICS = table_of(PluginMetric)
_EXECUTIONS = table_of(PluginExecution)
_LATEST = table_of(LatestMetric)
_INSERT_METRICS = insert(_METRICS)
_INSERT_EXECUTION = insert(_EXECUTIONS)


@cache
def latest_upsert(dialect: str) -> Insert:
    """One upsert of the latest-value row, built once per dialect, run with many rows."""
    upsert_insert = dialect_insert(dialect)
    stmt = upsert_insert(_LATEST)
    return stmt.on_conflict_do_update(
        index_elements=["plugin_id", "host"],
        set_={"timestamp": stmt.excluded.timestamp, "data": stmt.excluded.data},
        where=_LATEST.c.timestamp <= stmt.excluded.timestamp,
    )


async def insert_samples(session: Executor, samples: Sequence[MetricSample]) -> None:
    """Store samples and move the latest-value rows forward, in the caller's transaction."""
    if not samples:
        return
    rows: list[dict[str, Any]] = [
        {"plugin_id": s.plugin_id, "host": s.host, "timestamp": s.timestamp, "data": s.data}
        for s in samples
    ]
    # Core statements on the tables: no ORM bookkeeping on the hottest write path.
    await session.execute(_INSERT_METRICS, rows)
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["plugin_id"], row["host"])
        if key not in newest or row["timestamp"] >= newest[key]["timestamp"]:
            newest[key] = row
    await session.execute(latest_upsert(_dialect(session)), list(newest.values()))


async def record_execution(
    session: Executor,
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
        _INSERT_EXECUTION,
        {
            "plugin_id": plugin_id,
            "started_at": started_at,
            "completed_at": completed_at,
            "status": status,
            "duration_ms": duration_ms,
            "error": error,
            "metrics_count": metrics_count,
            "trigger": trigger,
        },
    )


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


async def latest_documents(
    session: AsyncSession, *, plugin_ids: Sequence[str] | None = None
) -> list[LatestMetric]:
    stmt = select(LatestMetric).order_by(LatestMetric.plugin_id, LatestMetric.host)
    if plugin_ids is not None:
        stmt = stmt.where(LatestMetric.plugin_id.in_(plugin_ids))
    return list((await session.scalars(stmt)).all())


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
