"""collection: the four psutil plugins' runs next to Glances' full refresh and bare psutil.

All three run in this process on this host, interleaved round by round:

* **Unity**: ``system-info``, ``disk-monitor``, ``network-monitor`` and
  ``process-monitor`` with their default configs, each ``collect_data()``
  awaited in turn: one round is what the hub spends collecting when all four
  are due.
* **Glances** (the ``glances`` package, a dev dependency): every plugin enabled
  by default except those that reach the network (cloud, ip, ports, wifi) or
  a container runtime, each updated as ``GlancesStats.update()`` does
  (``update``, ``update_views``, ``update_stats_history``) with its refresh
  timer expired so nothing is skipped.
* **psutil, same data**: the psutil calls a hand-written script makes for
  what the four plugins report, and nothing else.

The first round of each is a warm-up (rates and CPU percentages need a
previous sample) and is not counted. Wall time suffers on a busy machine; CPU
time (``time.process_time()``, all threads) much less, so both are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psutil

from benchmarks.harness import BenchmarkError, Context, Table
from unity_catalogue.disk_monitor import DiskMonitorPlugin
from unity_catalogue.network_monitor import NetworkMonitorPlugin
from unity_catalogue.process_monitor import ProcessMonitorPlugin
from unity_catalogue.system_info import SystemInfoPlugin
from unity_sdk import PluginBase

NAME = "collection"
SUMMARY = "the four psutil plugins vs Glances' full refresh and bare psutil, in process"

GLANCES_DISABLED = "cloud,ip,ports,wifi,containers,vms"
PAUSE = 0.2  # between rounds, so CPU percentages measure something


def _plugins() -> list[PluginBase[Any]]:
    return [SystemInfoPlugin(), DiskMonitorPlugin(), NetworkMonitorPlugin(), ProcessMonitorPlugin()]


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def glances_refresh() -> Callable[[], None]:
    """One full Glances refresh as a call; raises BenchmarkError without Glances."""
    try:
        from glances.main import GlancesMain
        from glances.stats import GlancesStats
        from glances.timer import Timer
    except ImportError as exc:
        raise BenchmarkError("Glances is not installed: pip install -e '.[dev]'") from exc
    argv = ["glances", "--disable-check-update", "--disable-plugin", GLANCES_DISABLED]
    with _argv(argv):
        core = GlancesMain()
    stats = GlancesStats(config=core.get_config(), args=core.get_args())
    plugins = [stats.get_plugin(name) for name in stats.getPluginsList(enable=True)]

    def refresh() -> None:
        for plugin in plugins:
            plugin.refresh_timer = Timer(0)  # due now: Glances skips plugins refreshed < 2 s ago
            plugin.update()
            plugin.update_views()
            plugin.update_stats_history()

    return refresh


def psutil_same_data() -> dict[str, Any]:
    """What the four plugins report, from the plain psutil calls for it."""
    partitions = {
        p.mountpoint: p for p in psutil.disk_partitions(all=True) if os.path.isdir(p.mountpoint)
    }
    usage = {}
    for mountpoint in partitions:
        with contextlib.suppress(OSError):
            usage[mountpoint] = psutil.disk_usage(mountpoint)
    processes = list(
        psutil.process_iter(["name", "status", "num_threads", "cpu_percent", "memory_info"])
    )
    return {
        "boot": psutil.boot_time(),
        "platform": (platform.system(), platform.release(), platform.machine()),
        "cpu": (
            psutil.cpu_percent(),
            psutil.getloadavg(),
            psutil.cpu_count(),
            psutil.cpu_count(False),
        ),
        "memory": (psutil.virtual_memory(), psutil.swap_memory()),
        "disks": (usage, psutil.disk_io_counters()),
        "network": psutil.net_io_counters(pernic=True),
        "connections": Counter(c.status for c in psutil.net_connections(kind="inet")),
        "processes": [p.info for p in processes],
    }


def _clock(call: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(rounds: int) -> dict[str, Any]:
    plugins = _plugins()
    loop = asyncio.new_event_loop()

    def unity_round() -> None:
        for plugin in plugins:
            loop.run_until_complete(plugin.collect_data())

    per_plugin: dict[str, list[float]] = {p.get_metadata().id: [] for p in plugins}

    def unity_timed_round() -> None:
        for plugin in plugins:
            started = time.perf_counter()
            loop.run_until_complete(plugin.collect_data())
            per_plugin[plugin.get_metadata().id].append(time.perf_counter() - started)

    glances = glances_refresh()
    contenders: dict[str, Callable[[], object]] = {
        "unity": unity_timed_round,
        "glances": glances,
        "psutil": psutil_same_data,
    }
    try:
        unity_round()
        glances()
        psutil_same_data()
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        for _ in range(rounds):
            time.sleep(PAUSE)
            for name, call in contenders.items():
                times[name].append(_clock(call))
    finally:
        loop.close()
    return {"times": times, "per_plugin": per_plugin}


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def run(ctx: Context) -> list[Table]:
    rounds = 5 if ctx.quick else 30
    ctx.log(f"collection: {rounds} rounds of each, interleaved")
    found = await asyncio.to_thread(measure, rounds)
    wall = {name: _median_ms([w for w, _ in rows]) for name, rows in found["times"].items()}
    cpu = {name: _median_ms([c for _, c in rows]) for name, rows in found["times"].items()}
    table = Table(
        f"collection: one round of the four psutil plugins (median of {rounds})",
        ["what", "wall ms", "CPU ms", "Unity / it (wall)", "Unity / it (CPU)", "goal"],
        [
            [
                "Unity: system-info, disk-monitor, network-monitor, process-monitor",
                wall["unity"],
                cpu["unity"],
                None,
                None,
                "",
            ],
            [
                "Glances: full refresh (local plugins)",
                wall["glances"],
                cpu["glances"],
                wall["unity"] / wall["glances"],
                cpu["unity"] / cpu["glances"],
                "≤ 0.4",
            ],
            [
                "psutil: the same data, plain calls",
                wall["psutil"],
                cpu["psutil"],
                wall["unity"] / wall["psutil"],
                cpu["unity"] / cpu["psutil"],
                "≤ 1.3",
            ],
        ],
        notes=[
            "per plugin, median wall ms: "
            + ", ".join(f"{k} {_median_ms(v):.2f}" for k, v in found["per_plugin"].items()),
            f"Glances plugins left out (network or container runtime): {GLANCES_DISABLED}",
        ],
    )
    return [table]
