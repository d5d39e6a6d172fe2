"""rollups: series read from the rollup tiers against hand-written scans of raw rows.

Ten million rows (10 plugins, one collection every 2.6 s each, 30 days) are
bulk-loaded with Core inserts; ``series()`` of one plugin is timed first on
raw rows alone (no pass has run: the value-once raw path), then the rollup
pass runs (its time is reported) and the same series are timed again, now
from the tiers plus the raw tail. Anchors, alternating with ours so machine
noise hits both alike:

- *hand-written raw scan*: the aggregation over ``plugin_metrics`` written by
  hand for the dialect, extracting the value once per row;
- *hour table alone*: a hand-written query of the 1-hour table, no tail.

Before timing, ours and the raw scan must return the same buckets with the
same counts, else the benchmark fails. The size of each tier is measured on
disk (SQLite ``dbstat``, PostgreSQL ``pg_total_relation_size``) and projected
per series-year.
"""

from __future__ import annotations

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
    bench_settings,
    fresh_database,
    median_ms,
    timed,
)
from unity.storage import registry
from unity.storage import series as series_store
from unity.storage.db import Database
from unity.storage.models import PluginMetric
from unity.storage.rollups import Rollups
from unity.storage.types import UTCDateTime, utcnow
from unity_sdk import MetricField, PluginMetadata

NAME = "rollups"
SUMMARY = "30-day and 24 h series from the rollup tiers vs hand-written raw scans"

PLUGINS = 10
SPAN = timedelta(days=30)
CHUNK = 10_000
TARGET = "rollup-00"
METRICS = [MetricField(name="cpu.percent", unit="%"), MetricField(name="mem", unit="%")]
TABLES = ("metric_series", "metric_rollups_1m", "metric_rollups_1h")

RAW_SQL = {
    SQLITE: """
        SELECT bucket, count(v), sum(v), min(v), max(v) FROM (
            SELECT CAST(strftime('%s', substr(timestamp, 1, 19)) AS INTEGER) / :step * :step
                       AS bucket,
                   json_extract(data, '$.cpu.percent') AS v
            FROM plugin_metrics
            WHERE plugin_id = :p AND timestamp >= :start AND timestamp < :end
            LIMIT -1 OFFSET 0)
        GROUP BY bucket ORDER BY bucket
    """,
    POSTGRESQL: """
        SELECT bucket, count(v), sum(v), min(v), max(v) FROM (
            SELECT floor(extract(epoch FROM "timestamp") / :step) * :step AS bucket,
                   (data #>> '{cpu,percent}')::float AS v
            FROM plugin_metrics
            WHERE plugin_id = :p AND "timestamp" >= :start AND "timestamp" < :end
            OFFSET 0) s
        GROUP BY bucket ORDER BY bucket
    """,
}
HOUR_SQL = text("""
    SELECT r.bucket / :step * :step AS b, sum(r.count), sum(r.sum), min(r.min), max(r.max)
    FROM metric_rollups_1h r JOIN metric_series s ON s.id = r.series_id
    WHERE s.plugin_id = :p AND s.metric = 'cpu.percent' AND s.item = ''
      AND r.bucket >= :lo AND r.bucket < :hi
    GROUP BY b ORDER BY b
""")
SIZE_SQL = {
    SQLITE: "SELECT sum(pgsize) FROM dbstat "
    "WHERE name = :t OR name LIKE 'sqlite_autoindex_' || :t || '%'",
    POSTGRESQL: "SELECT pg_total_relation_size(:t)",
}

Query = Callable[[AsyncSession], Awaitable[list[tuple[Any, ...]]]]


def _rows(per_plugin: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Oldest first, all plugins at each moment, like a hub writing them."""
    step = SPAN / per_plugin
    rng = random.Random(7)
    plugin_ids = [f"rollup-{n:02d}" for n in range(PLUGINS)]
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
    clock = time.perf_counter()
    async with db.session() as session:
        for n in range(PLUGINS):
            metadata = PluginMetadata(
                id=f"rollup-{n:02d}", name=f"Rollup {n}", version="1.0.0", metrics=METRICS
            )
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
    await _analyze(db)
    return time.perf_counter() - clock


async def _analyze(db: Database) -> None:
    # A live server's autovacuum (SQLite: the planner's statistics) would have these.
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


def _ours(start: datetime, end: datetime, step: int) -> Query:
    async def call(session: AsyncSession) -> list[tuple[Any, ...]]:
        points = await series_store.series(
            session, plugin_id=TARGET, path=["cpu", "percent"], start=start, end=end, step=step
        )
        return [(int(p.bucket.timestamp()), p.count) for p in points if p.count]

    return call


def _raw(dialect: str, start: datetime, end: datetime, step: int) -> Query:
    query = text(RAW_SQL[dialect]).bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    )

    async def call(session: AsyncSession) -> list[tuple[Any, ...]]:
        result = await session.execute(
            query, {"p": TARGET, "start": start, "end": end, "step": step}
        )
        return [(int(bucket), int(count)) for bucket, count, *_ in result]

    return call


def _hour_table(start: datetime, end: datetime, step: int) -> Query:
    lo, hi = -int(-start.timestamp() // 3600) * 3600, int(end.timestamp()) // 3600 * 3600

    async def call(session: AsyncSession) -> list[tuple[Any, ...]]:
        result = await session.execute(HOUR_SQL, {"p": TARGET, "step": step, "lo": lo, "hi": hi})
        return [(int(bucket), int(count)) for bucket, count, *_ in result]

    return call


async def _time(db: Database, reps: int, queries: list[Query]) -> list[tuple[float, int]]:
    """Median ms of each query, run in turn ``reps`` times, and its row count."""
    times: list[list[float]] = [[] for _ in queries]
    counts = []
    async with db.session() as session:
        for query in queries:
            counts.append(len(await query(session)))
        for _ in range(reps):
            for index, query in enumerate(queries):
                session.expunge_all()
                seconds, _ = await timed(lambda q=query: q(session))  # type: ignore[misc]
                times[index].append(seconds)
    return [(median_ms(t), n) for t, n in zip(times, counts, strict=True)]


async def _same(db: Database, ours: Query, raw: Query, what: str) -> None:
    async with db.session() as session:
        got, expected = await ours(session), await raw(session)
    if got != expected:
        raise BenchmarkError(
            f"{what}: ours returned {len(got)} buckets with {sum(c for _, c in got)} samples, "
            f"the raw scan {len(expected)} with {sum(c for _, c in expected)}"
        )


async def _sizes(db: Database, dialect: str) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            table: int((await conn.execute(text(SIZE_SQL[dialect]), {"t": table})).scalar() or 0)
            for table in TABLES
        }


async def _counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            table: int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar() or 0)
            for table in TABLES
        }


async def _measure(
    ctx: Context, dialect: str, per_plugin: int, reps: int
) -> tuple[list[list[Any]], list[list[Any]], list[str]]:
    rows: list[list[Any]] = []
    notes: list[str] = []
    async with fresh_database(ctx, dialect) as (db, folder):
        now = utcnow().replace(microsecond=0)
        total = per_plugin * PLUGINS
        ctx.log(f"  {dialect}: loading {total:,} rows")
        load = await _load(db, per_plugin, now)
        notes.append(f"{dialect}: loaded {total:,} rows in {load:.0f} s")
        month = (now - timedelta(days=30), now, 3600)
        day = (now - timedelta(hours=24), now, 60)
        cases = [("30 d, 1 h step", month), ("24 h, 1 min step", day)]
        ctx.log(f"  {dialect}: series on raw rows only")
        for label, (start, end, step) in cases:
            ours, raw = _ours(start, end, step), _raw(dialect, start, end, step)
            await _same(db, ours, raw, f"{dialect} {label} raw path")
            (ours_ms, n), (raw_ms, _) = await _time(db, reps, [ours, raw])
            rows.append([dialect, f"{label}, raw rows only", ours_ms, raw_ms, ours_ms / raw_ms, n])
        ctx.log(f"  {dialect}: rollup pass")
        url = db.url.render_as_string(hide_password=False)
        clock = time.perf_counter()
        await Rollups(db, bench_settings(folder, url, retention_days=400)).roll(now)
        seconds = time.perf_counter() - clock
        notes.append(
            f"{dialect}: the first rollup pass read {total:,} rows in {seconds:.0f} s "
            f"({total / seconds:,.0f} rows/s)"
        )
        await _analyze(db)
        for label, (start, end, step) in cases:
            ours, raw = _ours(start, end, step), _raw(dialect, start, end, step)
            await _same(db, ours, raw, f"{dialect} {label} from tiers")
            queries = [ours, raw]
            if step == 3600:
                queries.append(_hour_table(start, end, step))
            timings = await _time(db, reps, queries)
            (ours_ms, n), (raw_ms, _) = timings[0], timings[1]
            row = [dialect, f"{label}, tiers + raw tail", ours_ms, raw_ms, ours_ms / raw_ms, n]
            rows.append(row)
            if len(timings) > 2:
                notes.append(f"{dialect}: {label}: the hour table alone {timings[2][0]:.2f} ms")
        sizes, counts = await _sizes(db, dialect), await _counts(db)
    size_rows = []
    for table, years in (("metric_rollups_1m", 90 / 365), ("metric_rollups_1h", 730 / 365)):
        per_row = sizes[table] / max(1, counts[table])
        width = 60 if table.endswith("1m") else 3600
        per_series_year = per_row * 365 * 86400 / width
        size_rows.append(
            [
                dialect,
                table,
                counts[table],
                per_row,
                per_series_year / 2**20,
                years * per_series_year / 2**20,
            ]
        )
    return rows, size_rows, notes


async def run(ctx: Context) -> list[Table]:
    per_plugin, reps = (20_000, 5) if ctx.quick else (1_000_000, 11)
    table = Table(
        title=f"rollups: series over {per_plugin * PLUGINS:,} raw rows, {PLUGINS} plugins, 30 days",
        columns=[
            "database",
            "series of one plugin",
            "ours ms",
            "hand raw scan ms",
            "ours / hand",
            "buckets",
        ],
    )
    sizes = Table(
        title="rollup tiers on disk (2 metrics x 10 plugins on one host)",
        columns=[
            "database",
            "tier",
            "rows",
            "bytes/row",
            "MiB per series-year",
            "MiB per series kept",
        ],
    )
    notes: list[str] = []
    for dialect in ctx.dialects:
        rows, size_rows, more = await _measure(ctx, dialect, per_plugin, reps)
        table.rows.extend(rows)
        sizes.rows.extend(size_rows)
        notes.extend(more)
    table.notes = [
        *notes,
        f"Median of {reps} alternating repetitions; the target plugin has {per_plugin:,} rows.",
        "Targets: 30 d at 1 h step <= 50 ms; 24 h at 1 min step <= 1x the hand raw scan.",
        "buckets: non-empty buckets returned, checked equal (bucket and count) to the raw scan.",
    ]
    sizes.notes = [
        "bytes/row: table and its indexes on disk / rows; series-year: a year of buckets;",
        "kept: what the default retention keeps (1-minute 90 days, 1-hour 730 days).",
        "A host's size is this times its rolled series (declared numeric metrics, per item).",
    ]
    return [table, sizes]
