"""write_path: how many collect-and-store runs per second, against a raw bulk insert.

``PluginManager.execute`` runs a plugin returning a ~1 KB document and records
it exactly as a scheduled run does (execution row, metric row, latest-value
upsert, registry update, one transaction per run). The baseline, measured in
the same run on the same database, inserts the same number of identical metric
and execution rows with one SQLAlchemy Core ``insert()`` per table in one
transaction: the floor of what storing that data can cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select

from benchmarks.harness import (
    BenchmarkError,
    Context,
    ErrorCounter,
    Table,
    bench_settings,
    fresh_database,
)
from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.storage.db import Database
from unity.storage.models import PluginExecution, PluginMetric
from unity.storage.types import utcnow
from unity_sdk import PluginBase, PluginMetadata

NAME = "write_path"
SUMMARY = "execute-and-store runs/s of a ~1 KB document vs a raw Core bulk insert"

CONCURRENCY = 8
NO_ENTRY_POINTS = "unity.plugins.none"
# The scheduled mode: this many plugins on their own timers, each due this often,
# together asking for more runs than the hub can record.
SCHEDULED = 200
SCHEDULED_INTERVAL = 0.25
SCHEDULED_WARMUP = 3.0


def payload() -> dict[str, Any]:
    """A system-style document of about 1 KB of JSON."""
    return {
        "cpu": {
            "percent": 12.5,
            "load": [0.52, 0.41, 0.33],
            "per_core": [3.1, 7.9, 12.0, 25.5, 1.0, 0.5, 9.75, 14.25],
            "frequency_mhz": 2893.4,
        },
        "memory": {"total": 25_275_990_016, "available": 24_544_112_640, "percent": 2.9},
        "swap": {"total": 0, "used": 0, "percent": 0.0},
        "disks": {
            name: {"total": 512_110_190_592, "used": 123_456_789_012, "percent": 24.1}
            for name in ("sda1", "sdb1", "nvme0n1p1", "nvme0n1p2")
        },
        "network": {
            name: {"bytes_sent": 98_765_432_101, "bytes_recv": 12_345_678_901, "errors": 0}
            for name in ("eth0", "wlan0")
        },
        "uptime_seconds": 1_234_567.8,
        "boot_time": "2026-11-01T08:30:00+00:00",
        "processes": {"total": 287, "running": 2, "sleeping": 281, "zombie": 0},
        "temperatures": {"package": 48.0, "core0": 46.0, "core1": 47.0, "nvme": 39.85},
    }


DOCUMENT = payload()


def payload_plugins(count: int, interval: float = 60.0) -> list[type[PluginBase]]:
    return [_payload_class(number, interval) for number in range(1, count + 1)]


def _payload_class(number: int, interval: float = 60.0) -> type[PluginBase]:
    metadata = PluginMetadata(
        id=f"payload-{number}",
        name=f"Payload {number}",
        version="1.0.0",
        description="Benchmark plugin returning a fixed ~1 KB document.",
        timeout=30,
        default_interval=interval,
    )

    def get_metadata(self: PluginBase) -> PluginMetadata:
        return metadata

    async def collect_data(self: PluginBase) -> dict[str, Any]:
        return DOCUMENT

    namespace = {"get_metadata": get_metadata, "collect_data": collect_data, "__module__": __name__}
    return type(f"Payload{number}", (PluginBase,), namespace)


async def _execute_until(manager: PluginManager, plugin_id: str, deadline: float) -> int:
    runs = 0
    while time.perf_counter() < deadline:
        result = await manager.execute(plugin_id)
        if result.status != "success":
            raise BenchmarkError(f"run of {plugin_id} ended {result.status}: {result.error}")
        runs += 1
    return runs


async def _hub(manager: PluginManager, plugin_ids: list[str], seconds: float) -> tuple[int, float]:
    """Runs completed by one executing loop per plugin for ``seconds``; and the wall time."""
    clock = time.perf_counter()
    deadline = clock + seconds
    counts = await asyncio.gather(*(_execute_until(manager, p, deadline) for p in plugin_ids))
    return sum(counts), time.perf_counter() - clock


async def _raw(db: Database, plugin_ids: list[str], runs: int) -> float:
    """Seconds to store ``runs`` identical metric + execution rows in one transaction."""
    now = utcnow()
    metrics: list[dict[str, Any]] = []
    executions: list[dict[str, Any]] = []
    for n in range(runs):
        plugin_id = plugin_ids[n % len(plugin_ids)]
        started = now + timedelta(microseconds=n)
        metrics.append(
            {"plugin_id": plugin_id, "host": "bench-host", "timestamp": started, "data": DOCUMENT}
        )
        executions.append(
            {
                "plugin_id": plugin_id,
                "started_at": started,
                "completed_at": started,
                "status": "success",
                "duration_ms": 0.1,
                "error": None,
                "metrics_count": 1,
                "trigger": "manual",
            }
        )
    clock = time.perf_counter()
    async with db.engine.begin() as conn:
        await conn.execute(insert(PluginMetric), metrics)
        await conn.execute(insert(PluginExecution), executions)
    return time.perf_counter() - clock


async def _measure(ctx: Context, dialect: str, seconds: float) -> list[list[Any]]:
    classes = payload_plugins(CONCURRENCY)
    ids = [f"payload-{n}" for n in range(1, CONCURRENCY + 1)]
    rows: list[list[Any]] = []
    async with fresh_database(ctx, dialect) as (db, folder):
        settings = bench_settings(folder, db.url.render_as_string(hide_password=False))
        manager = PluginManager(db, settings, PluginLoader(classes, group=NO_ENTRY_POINTS))
        await manager.start()
        try:
            with ErrorCounter() as errors:
                await _hub(manager, ids[:1], 0.5)  # warm caches and the connection pool
                for label, plugin_ids in (
                    ("sequential, 1 plugin", ids[:1]),
                    (f"concurrent, {CONCURRENCY} plugins", ids),
                ):
                    ctx.log(f"  {dialect}: {label} for {seconds:g} s")
                    writer = db.group_writer
                    groups, items = writer.groups, writer.items
                    cpu = time.process_time()
                    runs, wall = await _hub(manager, plugin_ids, seconds)
                    cpu = time.process_time() - cpu
                    per_txn = (writer.items - items) / max(writer.groups - groups, 1)
                    raw = await _raw(db, plugin_ids, runs)
                    ours, floor = runs / wall, runs / raw
                    measured = [runs, ours, 1000 / ours, floor, ours / floor, per_txn]
                    rows.append([dialect, label, *measured, cpu / runs * 1000])
            if errors.count:
                raise BenchmarkError(f"the hub logged {errors.count} errors: {errors.first}")
        finally:
            await manager.stop()
    return rows


async def _stored_runs(db: Database) -> tuple[int, int]:
    """Successful runs and skipped ticks recorded so far."""
    async with db.session() as session:
        rows = await session.execute(
            select(PluginExecution.status, func.count()).group_by(PluginExecution.status)
        )
        counts = dict(rows.tuples().all())
    return counts.get("success", 0), counts.get("skipped", 0)


async def _scheduled(ctx: Context, dialect: str, seconds: float, plugins: int) -> list[Any]:
    """``plugins`` plugins on their schedules for ``seconds``: runs recorded per second,
    against the raw insert of as many rows."""
    classes = payload_plugins(plugins, SCHEDULED_INTERVAL)
    ids = [f"payload-{n}" for n in range(1, plugins + 1)]
    async with fresh_database(ctx, dialect) as (db, folder):
        settings = bench_settings(
            folder, db.url.render_as_string(hide_password=False), autoenable=ids
        )
        manager = PluginManager(db, settings, PluginLoader(classes, group=NO_ENTRY_POINTS))
        try:
            with ErrorCounter() as errors:
                await manager.start()
                await asyncio.sleep(SCHEDULED_WARMUP)
                writer = db.group_writer
                runs0, skips0 = await _stored_runs(db)
                groups0, items0 = writer.groups, writer.items
                cpu0, clock = time.process_time(), time.perf_counter()
                await asyncio.sleep(seconds)
                runs1, skips1 = await _stored_runs(db)
                wall = time.perf_counter() - clock
                cpu = time.process_time() - cpu0
                groups, items = writer.groups - groups0, writer.items - items0
            if errors.count:
                raise BenchmarkError(f"the hub logged {errors.count} errors: {errors.first}")
        finally:
            await manager.stop()
        runs = runs1 - runs0
        if runs <= 0:
            raise BenchmarkError("no scheduled run was recorded in the window")
        raw = await _raw(db, ids, runs)
    ours, floor = runs / wall, runs / raw
    ctx.log(
        f"  {dialect}: scheduled: {runs} runs, {skips1 - skips0} skipped ticks, "
        f"{items / max(groups, 1):.1f} items per transaction, "
        f"{cpu / runs * 1000:.2f} ms CPU per run"
    )
    return [
        dialect,
        f"scheduled, {plugins} plugins every {SCHEDULED_INTERVAL:g} s",
        runs,
        ours,
        1000 / ours,
        floor,
        ours / floor,
        items / max(groups, 1),
        cpu / runs * 1000,
    ]


async def run(ctx: Context) -> list[Table]:
    seconds = 2.0 if ctx.quick else 10.0
    size = len(json.dumps(DOCUMENT))
    table = Table(
        title=f"write path: execute-and-store of a {size} B document vs raw Core bulk insert",
        columns=[
            "database",
            "mode",
            "runs",
            "hub runs/s",
            "hub ms/run",
            "raw rows/s",
            "hub / raw",
            "items / txn",
            "CPU ms/run",
        ],
    )
    plugins = 50 if ctx.quick else SCHEDULED
    for dialect in ctx.dialects:
        table.rows.extend(await _measure(ctx, dialect, seconds))
        ctx.log(f"  {dialect}: scheduled, {plugins} plugins for {seconds:g} s")
        table.rows.append(await _scheduled(ctx, dialect, seconds, plugins))
    table.notes = [
        f"Each mode runs for {seconds:g} s; the raw insert then stores the same number of rows.",
        "A raw row is what one run stores: one plugin_metrics row plus one plugin_executions row.",
        "A hub run also upserts plugin_latest, updates its plugins row and commits.",
        f"scheduled: {plugins} plugins due every {SCHEDULED_INTERVAL:g} s (more than the hub"
        f" records), after a {SCHEDULED_WARMUP:g} s warm-up; runs are the successful executions"
        " stored in the window; items / txn: runs and skipped ticks per group-commit transaction;"
        " CPU ms/run: process CPU (hub, plugin threads, driver) / runs.",
    ]
    return [table]
