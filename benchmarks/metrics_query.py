"""metrics_query: the queries of ``unity.storage.metrics`` against hand-written SQL.

A million rows (100 plugins x 10,000 collections a minute apart, about seven
days, interleaved in time as a hub writes them) are bulk-loaded with Core
inserts. Then, alternating the two so machine noise hits both alike:

- *latest 100*: ``query_metrics(limit=100)`` against one ``text()`` query;
- *24 h series*: ``series(step=300)`` of ``cpu.percent`` against the same
  aggregation written by hand for the dialect.

Both sides must return the same rows (ids, or buckets and counts), else the
benchmark fails rather than compare different work.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.harness import (
    POSTGRESQL,
    SQLITE,
    BenchmarkError,
    Context,
    Table,
    fresh_database,
    median_ms,
    timed,
)
from unity.storage import metrics as metric_store
from unity.storage import registry
from unity.storage import series as series_store
from unity.storage.db import Database
from unity.storage.models import PluginMetric
from unity.storage.types import UTCDateTime, utcnow
from unity_sdk import PluginMetadata

NAME = "metrics_query"
SUMMARY = "query_metrics and series over 1M rows vs hand-written SQL"

PLUGINS = 100
SPAN = timedelta(days=7)
STEP = 300
CHUNK = 10_000
TARGET = "series-042"

LATEST_SQL = text(
    "SELECT id, host, timestamp, data FROM plugin_metrics WHERE plugin_id = :p "
    "ORDER BY timestamp DESC, id DESC LIMIT 100"
)
SERIES_SQL = {
    SQLITE: """
        SELECT CAST(strftime('%s', timestamp) AS INTEGER) / :step * :step AS bucket,
               avg(json_extract(data, '$.cpu.percent')),
               min(json_extract(data, '$.cpu.percent')),
               max(json_extract(data, '$.cpu.percent')),
               count(json_extract(data, '$.cpu.percent'))
        FROM plugin_metrics
        WHERE plugin_id = :p AND timestamp >= :start AND timestamp < :end
        GROUP BY bucket ORDER BY bucket
    """,
    POSTGRESQL: """
        SELECT floor(extract(epoch FROM "timestamp") / :step) * :step AS bucket,
               avg((data #>> '{cpu,percent}')::float),
               min((data #>> '{cpu,percent}')::float),
               max((data #>> '{cpu,percent}')::float),
               count((data #>> '{cpu,percent}')::float)
        FROM plugin_metrics
        WHERE plugin_id = :p AND "timestamp" >= :start AND "timestamp" < :end
        GROUP BY 1 ORDER BY 1
    """,
}


def _rows(per_plugin: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Oldest first, all plugins at each moment, like a hub writing them."""
    step = SPAN / per_plugin
    rng = random.Random(42)
    plugin_ids = [f"series-{n:03d}" for n in range(PLUGINS)]
    for k in range(per_plugin, 0, -1):
        stamp = now - step * k
        for plugin_id in plugin_ids:
            yield {
                "plugin_id": plugin_id,
                "host": "bench-host",
                "timestamp": stamp,
                "data": {
                    "cpu": {"percent": round(rng.uniform(0, 100), 2)},
                    "mem": round(rng.uniform(0, 100), 2),
                },
            }


async def _load(db: Database, per_plugin: int, now: datetime) -> float:
    """Register the plugins and bulk-insert their history; returns the seconds taken."""
    clock = time.perf_counter()
    async with db.session() as session:
        for n in range(PLUGINS):
            metadata = PluginMetadata(id=f"series-{n:03d}", name=f"Series {n}", version="1.0.0")
            await registry.sync_plugin(session, metadata=metadata)
    chunk: list[dict[str, Any]] = []
    for row in _rows(per_plugin, now):
        chunk.append(row)
        if len(chunk) == CHUNK:
            async with db.engine.begin() as conn:
                await conn.execute(insert(PluginMetric), chunk)
            chunk = []
    if chunk:
        async with db.engine.begin() as conn:
            await conn.execute(insert(PluginMetric), chunk)
    if db.dialect == POSTGRESQL:
        # A live server's autovacuum would have analysed the table by now.
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE plugin_metrics"))
    return time.perf_counter() - clock


Query = Callable[[AsyncSession], Awaitable[list[tuple[Any, ...]]]]


async def _latest_ours(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows, _ = await metric_store.query_metrics(session, plugin_id=TARGET, limit=100)
    return [(row.id, row.data) for row in rows]


async def _latest_hand(session: AsyncSession) -> list[tuple[Any, ...]]:
    result = await session.execute(LATEST_SQL, {"p": TARGET})
    # Decode the documents as the ORM does, so both sides hand back the same data.
    return [(row.id, _document(row.data)) for row in result]


def _document(data: str | dict[str, Any]) -> dict[str, Any]:
    """asyncpg already decodes jsonb in text queries; SQLite hands back the text."""
    return data if isinstance(data, dict) else json.loads(data)


def _series_ours(start: datetime, end: datetime) -> Query:
    async def call(session: AsyncSession) -> list[tuple[Any, ...]]:
        points = await series_store.series(
            session, plugin_id=TARGET, path=["cpu", "percent"], start=start, end=end, step=STEP
        )
        return [(p.bucket.timestamp(), p.count) for p in points]

    return call


def _series_hand(dialect: str, start: datetime, end: datetime) -> Query:
    query = text(SERIES_SQL[dialect]).bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    )

    async def call(session: AsyncSession) -> list[tuple[Any, ...]]:
        result = await session.execute(
            query, {"p": TARGET, "start": start, "end": end, "step": STEP}
        )
        return [(float(bucket), int(count)) for bucket, _avg, _lo, _hi, count in result]

    return call


def _first_difference(a: list[Any], b: list[Any]) -> int:
    for index, (left, right) in enumerate(zip(a, b, strict=False)):
        if left != right:
            return index
    return min(len(a), len(b))


async def _compare(
    db: Database, reps: int, ours: Query, hand: Query, what: str
) -> tuple[float, float, int]:
    """Median milliseconds of both, alternating, and the row count; checks the rows match."""
    ours_times: list[float] = []
    hand_times: list[float] = []
    async with db.session() as session:
        expected = await ours(session)
        got = await hand(session)
        if expected != got:
            raise BenchmarkError(
                f"{what}: ours returned {len(expected)} rows, hand-written {len(got)}; "
                f"first difference at row {_first_difference(expected, got)}"
            )
        for _ in range(reps):
            session.expunge_all()
            seconds, _ = await timed(lambda: ours(session))
            ours_times.append(seconds)
            seconds, _ = await timed(lambda: hand(session))
            hand_times.append(seconds)
    return median_ms(ours_times), median_ms(hand_times), len(expected)


async def _measure(
    ctx: Context, dialect: str, per_plugin: int, reps: int
) -> tuple[list[list[Any]], str]:
    rows: list[list[Any]] = []
    async with fresh_database(ctx, dialect) as (db, _folder):
        now = utcnow().replace(microsecond=0)
        total = per_plugin * PLUGINS
        ctx.log(f"  {dialect}: loading {total:,} rows")
        load = await _load(db, per_plugin, now)
        loaded = f"{dialect}: loaded {total:,} rows in {load:.1f} s ({total / load:,.0f} rows/s)"
        ctx.log(f"  {dialect}: {reps} repetitions of each query")
        start, end = now - timedelta(hours=24), now
        cases = [
            ("latest 100 of one plugin", _latest_ours, _latest_hand),
            (
                f"24 h series, {STEP} s buckets",
                _series_ours(start, end),
                _series_hand(dialect, start, end),
            ),
        ]
        for label, ours, hand in cases:
            ours_ms, hand_ms, count = await _compare(db, reps, ours, hand, f"{dialect} {label}")
            rows.append([dialect, label, ours_ms, hand_ms, ours_ms / hand_ms, count])
    return rows, loaded


async def run(ctx: Context) -> list[Table]:
    per_plugin, reps = (1_000, 15) if ctx.quick else (10_000, 51)
    table = Table(
        title=f"metrics query: {per_plugin * PLUGINS:,} rows, {PLUGINS} plugins, ~7 days",
        columns=["database", "query", "ours ms", "hand-written ms", "ours / hand", "rows"],
    )
    loads: list[str] = []
    for dialect in ctx.dialects:
        rows, loaded = await _measure(ctx, dialect, per_plugin, reps)
        table.rows.extend(rows)
        loads.append(loaded)
    table.notes = [
        *loads,
        f"Median of {reps} alternating repetitions, each inside one open session.",
        "The hand-written latest-100 query decodes each JSON document, as the ORM does.",
        "rows: rows returned by each side, checked equal (ids and documents, or buckets "
        "and counts) before timing.",
    ]
    return [table]
