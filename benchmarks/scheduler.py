"""scheduler: many no-op plugins on a real manager; how late do runs start, what CPU do they cost?

Every plugin is a generated ``PluginBase`` subclass whose ``collect_data``
returns ``{"v": 1}``, so everything measured is the hub: the timer, the hop to
the plugin loop and back, the execution record and the metric insert in
SQLite. Two sizes: 500 plugins every 5 s, and the scale target of 2,000
plugins every 10 s. The baseline of each, measured in the same run, is the
same number of bare ``asyncio.sleep`` timers on the same jittered grid doing
nothing: the lateness the event loop alone gives on this machine right now.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks.harness import (
    SQLITE,
    Context,
    ErrorCounter,
    Table,
    bench_settings,
    fresh_database,
    percentile,
)
from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.plugins.stats import HubStats
from unity_sdk import PluginBase, PluginMetadata

NAME = "scheduler"
SUMMARY = (
    "no-op plugins (500 every 5 s, 2,000 every 10 s) on a real PluginManager (SQLite): "
    "lateness, CPU per run, threads"
)

JITTER = 0.1
NO_ENTRY_POINTS = "unity.plugins.none"


@dataclass(frozen=True)
class Size:
    """One measured configuration."""

    count: int
    interval: float
    window: float  # measured seconds after the warm-up
    baseline_window: float  # seconds of bare timers
    # False: the run's database write is replaced by a no-op, leaving what the
    # scheduler and the plugin loops cost (the write has a benchmark of its own).
    store: bool = True


FULL = [
    Size(500, 5.0, 60.0, 20.0),
    Size(2000, 10.0, 60.0, 20.0),
    Size(2000, 10.0, 30.0, 10.0, store=False),
]
QUICK = [
    Size(50, 5.0, 15.0, 5.0),
    Size(200, 10.0, 20.0, 5.0),
    Size(200, 10.0, 10.0, 5.0, store=False),
]


def noop_plugins(count: int, interval: float = 5.0) -> list[type[PluginBase]]:
    """``count`` distinct plugin classes ``noop-0001``... that return ``{"v": 1}``."""
    return [_noop_class(number, interval) for number in range(1, count + 1)]


def _noop_class(number: int, interval: float) -> type[PluginBase]:
    metadata = PluginMetadata(
        id=f"noop-{number:04d}",
        name=f"No-op {number}",
        version="1.0.0",
        description="Benchmark plugin that collects nothing.",
        default_interval=interval,
        timeout=5,
    )

    def get_metadata(self: PluginBase) -> PluginMetadata:
        return metadata

    async def collect_data(self: PluginBase) -> dict[str, Any]:
        return {"v": 1}

    namespace = {"get_metadata": get_metadata, "collect_data": collect_data, "__module__": __name__}
    return type(f"Noop{number:04d}", (PluginBase,), namespace)


def _run_counts(stats: HubStats) -> Counter[str]:
    counts: Counter[str] = Counter()
    for metric in stats.registry.collect():
        if metric.name == "unity_plugin_runs":
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["status"]] += int(sample.value)
    return counts


async def _bare_timers(count: int, interval: float, seconds: float) -> tuple[list[float], float]:
    """Lateness of ``count`` do-nothing timers on the scheduler's grid; and their CPU."""
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    end = loop.time() + seconds

    async def timer() -> None:
        base = loop.time() + random.uniform(0, min(1.0, interval * JITTER))
        due = base
        while due < end:
            await asyncio.sleep(max(0.0, due - loop.time()))
            lateness.append(loop.time() - due)
            base += interval
            due = base + random.uniform(0, interval * JITTER)

    cpu = time.process_time()
    await asyncio.gather(*(timer() for _ in range(count)))
    return lateness, time.process_time() - cpu


async def run(ctx: Context) -> list[Table]:
    return [await _measure(ctx, size) for size in (QUICK if ctx.quick else FULL)]


async def _measure(ctx: Context, size: Size) -> Table:
    count, interval, window = size.count, size.interval, size.window
    warmup = interval
    classes = noop_plugins(count, interval)
    ids = [f"noop-{n:04d}" for n in range(1, count + 1)]

    ctx.log(f"  bare timers: {count} every {interval:g} s for {size.baseline_window:g} s")
    process = psutil.Process()
    bare_threads, bare_rss = process.num_threads(), process.memory_info().rss
    bare_lateness, bare_cpu = await _bare_timers(count, interval, size.baseline_window)

    async with fresh_database(ctx, SQLITE) as (db, folder):
        settings = bench_settings(
            folder, db.url.render_as_string(), autoenable=ids, scheduler_jitter=JITTER
        )
        manager = PluginManager(db, settings, PluginLoader(classes, group=NO_ENTRY_POINTS))
        if not size.store:

            async def stored_nowhere(*args: Any, **kwargs: Any) -> None:
                return None

            manager.recorder.record_run = stored_nowhere  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        samples: list[tuple[float, float]] = []
        histogram = manager.scheduler._on_lateness

        def record_lateness(seconds: float) -> None:
            samples.append((loop.time(), seconds))
            if histogram is not None:
                histogram(seconds)

        # The histogram's buckets are too coarse for percentiles: keep every sample.
        manager.scheduler._on_lateness = record_lateness
        with ErrorCounter() as errors:
            ctx.log(f"  hub: starting {count} plugins")
            started_cpu, clock = time.process_time(), time.perf_counter()
            await manager.start()
            startup_wall = time.perf_counter() - clock
            startup_cpu = time.process_time() - started_cpu
            enabled = sum(m.enabled and m.active for m in manager.plugins.values())
            try:
                ctx.log(f"  hub: {warmup:g} s warm-up, then {window:g} s measured")
                await asyncio.sleep(warmup)
                before, window_start = _run_counts(manager.stats), loop.time()
                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.sleep(window)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                after, window_end = _run_counts(manager.stats), loop.time()
                threads, rss = process.num_threads(), process.memory_info().rss
                plugin_threads = manager.registry.workers.threads
            finally:
                clock = time.perf_counter()
                await manager.stop()
                stop_wall = time.perf_counter() - clock

    lateness = [late for at, late in samples if window_start <= at < window_end]
    done = {status: after[status] - before[status] for status in after}
    runs = done.get("success", 0) + done.get("failed", 0) + done.get("timed_out", 0)
    expected = count * window / interval

    def ms(values: list[float], q: float) -> float:
        return percentile(values, q) * 1000

    stored = "SQLite" if size.store else "execution only (the run's database write is a no-op)"
    table = Table(
        title=(
            f"scheduler: {count} no-op plugins every {interval:g} s, {stored}, {window:g} s window"
        ),
        columns=["measure", "hub", f"baseline: {count} bare timers", "unit"],
    )
    rows: list[list[Any]] = [
        ["plugins enabled", enabled, count, ""],
        ["ticks expected (plugins x window / interval)", round(expected), None, ""],
        ["ticks observed", len(lateness), None, ""],
        ["runs completed", runs, None, ""],
        ["  of which failed or timed out", runs - done.get("success", 0), None, ""],
        ["skipped (previous run still going)", done.get("skipped", 0), None, ""],
        ["start lateness p50", ms(lateness, 0.5), ms(bare_lateness, 0.5), "ms"],
        ["start lateness p99", ms(lateness, 0.99), ms(bare_lateness, 0.99), "ms"],
        ["start lateness max", ms(lateness, 1.0), ms(bare_lateness, 1.0), "ms"],
        [
            "hub CPU per run",
            cpu / runs * 1000 if runs else None,
            bare_cpu / len(bare_lateness) * 1000 if bare_lateness else None,
            "ms",
        ],
        ["CPU of one core", cpu / wall * 100, bare_cpu / size.baseline_window * 100, "%"],
        ["runs per second", runs / wall, None, "1/s"],
        ["process threads", threads, bare_threads, ""],
        ["  of which plugin loops and their watchdog", plugin_threads, None, ""],
        ["process resident memory", rss / 2**20, bare_rss / 2**20, "MiB"],
        ["start-up (register + enable all), wall", startup_wall, None, "s"],
        ["start-up, CPU", startup_cpu, None, "s"],
        ["stop, wall", stop_wall, None, "s"],
        ["hub errors logged", errors.count, None, ""],
    ]
    table.rows = rows
    table.notes = [
        f"The first {warmup:g} s after start (start-up burst, first retention pass) "
        "are not measured.",
        "CPU is the whole process (event loop, plugin loop threads, aiosqlite threads).",
        "Baseline CPU per run is per bare timer tick; baseline threads and memory are the "
        "process's before the hub starts.",
    ]
    if errors.first:
        table.notes.append(f"first hub error: {errors.first}")
    return table
