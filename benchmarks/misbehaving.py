"""misbehaving: healthy plugins next to thirteen misbehaving ones on a real ``unity serve``.

Two hubs run one after the other on fresh databases, each a real subprocess
with plugins installed as entry points (:mod:`tests.support.misbehaving`):

- **baseline**: four healthy plugins collecting every 0.5 s;
- **misbehaving**: the same four plus thirteen that block in ``get_metadata``,
  block at import, block in ``on_enable``, block in ``on_disable``, block in
  ``collect_data``, await forever, spin the CPU, leak memory (process-isolated),
  raise with megabyte messages, print and log 2 MB per run, return 5 MB
  documents, and call ``os._exit`` (process-isolated).

While the window runs, a client polls ``/healthz`` and the plugin list back to
back, and the hub's resident memory is sampled. Afterwards the hub is stopped
with SIGTERM (timed) and the executions are read from the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, select, text
from tests.support import misbehaving
from tests.support.processes import free_port

from benchmarks.harness import (
    POSTGRESQL,
    BenchmarkError,
    Context,
    Table,
    fresh_database,
    percentile,
)
from benchmarks.ingest import Hub
from unity.storage.db import Database
from unity.storage.models import PluginExecution
from unity.storage.types import utcnow

NAME = "misbehaving"
SUMMARY = "healthy plugins' ticks, API p99 and memory next to 13 misbehaving plugins"

UNITY = Path(sys.executable).with_name("unity")
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
GRACE = 10.0
ISOLATION_MEMORY_MB = 256
HEALTHY = [misbehaving.Healthy, misbehaving.Healthy2, misbehaving.Healthy3, misbehaving.Healthy4]
BAD = [
    misbehaving.MetadataBlocks,
    misbehaving.EnableBlocks,
    misbehaving.DisableBlocks,
    misbehaving.CollectBlocks,
    misbehaving.Hangs,
    misbehaving.SpinsCpu,
    misbehaving.Leaks,
    misbehaving.RaisesUnexpected,
    misbehaving.Prints,
    misbehaving.Logs,
    misbehaving.HugeDocument,
    misbehaving.ExitsIsolated,
]  # and one more: a module whose import never returns (misbehaving.IMPORT_BLOCKS)


@dataclass
class Sampled:
    """What the observer collected during the window."""

    healthz: list[float] = field(default_factory=list)
    plugin_list: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    children_rss: list[int] = field(default_factory=list)
    errors: int = 0


async def _wait_ready(hub: Hub) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=hub.url, timeout=2, trust_env=False) as http:
        while time.monotonic() < deadline:
            if hub.proc.poll() is not None:
                raise BenchmarkError(
                    f"the hub exited with {hub.proc.returncode} while starting:\n"
                    f"{hub.output()[-3000:]}"
                )
            with suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchmarkError(f"the hub did not answer /healthz within {START_TIMEOUT:g} s")


def _stop(hub: Hub) -> float:
    """SIGTERM; the seconds until the process exited."""
    clock = time.monotonic()
    if hub.proc.poll() is None:
        hub.proc.send_signal(signal.SIGTERM)
    try:
        code = hub.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        hub.proc.kill()
        hub.proc.wait()
        raise BenchmarkError(f"the hub did not stop within {STOP_TIMEOUT:g} s of SIGTERM") from None
    if code not in (0, -signal.SIGTERM):
        raise BenchmarkError(f"the hub exited with {code}:\n{hub.output()[-3000:]}")
    return time.monotonic() - clock


@asynccontextmanager
async def serving(
    database_url: str, folder: Path, classes: list[type[Any]], *, import_blocks: bool
) -> AsyncIterator[Hub]:
    site = misbehaving.install(folder / "site", classes, import_blocks=import_blocks)
    env = {name: value for name, value in os.environ.items() if not name.startswith("UNITY_")}
    enabled = ", ".join(f'"{cls.plugin_id}"' for cls in classes)
    env.update(
        PYTHONPATH=misbehaving.python_path(site),
        UNITY_DATA_DIR=str(folder),
        UNITY_DATABASE_URL=database_url,
        UNITY_HOST="127.0.0.1",
        UNITY_PORT=str(free_port()),
        UNITY_AUTOENABLE=f"[{enabled}]",
        UNITY_LOG_LEVEL="WARNING",
        UNITY_CONFIG_FILE=str(folder / "absent.toml"),
        UNITY_ISOLATION_MEMORY_MB=str(ISOLATION_MEMORY_MB),
        UNITY_SHUTDOWN_GRACE_SECONDS=str(GRACE),
    )
    log = folder / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(UNITY), "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = Hub(f"http://127.0.0.1:{env['UNITY_PORT']}", proc, log)
    try:
        await _wait_ready(hub)
        yield hub
    except BaseException:
        with suppress(BenchmarkError):
            _stop(hub)
        raise


async def _observe(hub: Hub, until: float, sampled: Sampled) -> None:
    """Poll /healthz and the plugin list back to back; sample memory every 0.5 s."""
    headers = {"Authorization": f"Bearer {hub.admin_token()}"}
    process = psutil.Process(hub.proc.pid)

    async def poll(path: str, into: list[float]) -> None:
        async with httpx.AsyncClient(
            base_url=hub.url, headers=headers, timeout=30, trust_env=False
        ) as http:
            while time.monotonic() < until:
                clock = time.perf_counter()
                response = await http.get(path, params={"limit": 1000} if "plugins" in path else {})
                into.append(time.perf_counter() - clock)
                if response.status_code != 200:
                    sampled.errors += 1
                await asyncio.sleep(0.02)

    async def memory() -> None:
        while time.monotonic() < until:
            sampled.rss.append(process.memory_info().rss)
            children = 0
            for child in process.children(recursive=True):
                with suppress(psutil.Error):
                    children += child.memory_info().rss
            sampled.children_rss.append(children)
            await asyncio.sleep(0.5)

    await asyncio.gather(
        poll("/healthz", sampled.healthz),
        poll("/api/plugins/v2", sampled.plugin_list),
        memory(),
    )


async def _database_bytes(db: Database, folder: Path) -> int:
    if db.url.get_backend_name() == POSTGRESQL:
        async with db.engine.connect() as conn:
            size = await conn.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar_one())
    return sum(path.stat().st_size for path in folder.glob("unity.db*"))


async def _healthy_runs(db: Database, begin: datetime, end: datetime) -> tuple[int, dict[str, int]]:
    """Successful scheduled runs of the healthy plugins in the window, and the other outcomes."""
    async with db.session() as session:
        rows = await session.execute(
            select(PluginExecution.status, func.count())
            .where(
                PluginExecution.plugin_id.in_([cls.plugin_id for cls in HEALTHY]),
                PluginExecution.trigger == "schedule",
                PluginExecution.started_at >= begin,
                PluginExecution.started_at < end,
            )
            .group_by(PluginExecution.status)
        )
        counts = {str(status): int(count) for status, count in rows.all()}
    return counts.pop("success", 0), counts


async def _scenario(ctx: Context, dialect: str, seconds: float, *, bad: bool) -> dict[str, Any]:
    classes = [*HEALTHY, *(BAD if bad else [])]
    async with fresh_database(ctx, dialect) as (db, folder):
        label = "misbehaving" if bad else "baseline"
        ctx.log(f"  {dialect} {label}: starting unity serve with {len(classes)} plugins")
        clock = time.monotonic()
        async with serving(
            db.url.render_as_string(hide_password=False), folder, classes, import_blocks=bad
        ) as hub:
            started = time.monotonic() - clock
            # Let the first runs (spread over the first interval) and on_enable settle.
            await asyncio.sleep(3.0)
            sampled = Sampled()
            log_before = hub.log.stat().st_size
            db_before = await _database_bytes(db, folder)
            cpu = psutil.Process(hub.proc.pid).cpu_times()
            begin = utcnow()
            ctx.log(f"  {dialect} {label}: {seconds:g} s measured")
            await _observe(hub, time.monotonic() + seconds, sampled)
            end = utcnow()
            after = psutil.Process(hub.proc.pid).cpu_times()
            log_growth = hub.log.stat().st_size - log_before
            db_growth = await _database_bytes(db, folder) - db_before
            answer = httpx.get(
                f"{hub.url}/api/plugins/v2",
                headers={"Authorization": f"Bearer {hub.admin_token()}"},
                timeout=30,
            ).json()
            stop_seconds = _stop(hub)
        window = (end - begin).total_seconds()
        success, other = await _healthy_runs(db, begin, end)
    expected = sum(window / cls.interval for cls in HEALTHY)
    rss = sampled.rss or [0]
    half = len(rss) // 2
    return {
        "plugins": len(classes) + (1 if bad else 0),
        "load failures": len(answer["load_failures"]),
        "start to /healthz": started,
        "healthy ticks kept": success / expected,
        "healthy runs": success,
        "healthy runs expected": expected,
        "healthy other outcomes": ", ".join(f"{k} {v}" for k, v in sorted(other.items())) or "-",
        "/healthz p50": percentile(sampled.healthz, 0.5) * 1000,
        "/healthz p99": percentile(sampled.healthz, 0.99) * 1000,
        "plugin list p50": percentile(sampled.plugin_list, 0.5) * 1000,
        "plugin list p99": percentile(sampled.plugin_list, 0.99) * 1000,
        "API errors": sampled.errors,
        "hub RSS at start of window": rss[0] / 2**20,
        "hub RSS max": max(rss) / 2**20,
        "hub RSS growth, 2nd half": (max(rss[half:]) - max(rss[: half or 1])) / 2**20,
        "isolated children RSS max": max(sampled.children_rss or [0]) / 2**20,
        "hub CPU": (after.user + after.system - cpu.user - cpu.system) / window,
        "log growth": log_growth / 2**20,
        "database growth": db_growth / 2**20,
        "SIGTERM to exit": stop_seconds,
    }


UNITS = {
    "start to /healthz": "s",
    "healthy ticks kept": "fraction",
    "/healthz p50": "ms",
    "/healthz p99": "ms",
    "plugin list p50": "ms",
    "plugin list p99": "ms",
    "hub RSS at start of window": "MiB",
    "hub RSS max": "MiB",
    "hub RSS growth, 2nd half": "MiB",
    "isolated children RSS max": "MiB",
    "hub CPU": "cores",
    "log growth": "MiB",
    "database growth": "MiB",
    "SIGTERM to exit": "s",
}
TARGETS = {
    "healthy ticks kept": ">= 0.99",
    "/healthz p99": "<= 250",
    "plugin list p99": "<= 250",
    "hub RSS growth, 2nd half": "bounded",
    "SIGTERM to exit": f"<= {GRACE:g}",
}


async def run(ctx: Context) -> list[Table]:
    seconds = 10.0 if ctx.quick else 30.0
    tables: list[Table] = []
    for dialect in ctx.dialects:
        baseline = await _scenario(ctx, dialect, seconds, bad=False)
        loaded = await _scenario(ctx, dialect, seconds, bad=True)
        tables.append(
            Table(
                title=f"misbehaving ({dialect}): 4 healthy plugins every 0.5 s, alone and "
                f"next to 13 misbehaving ones, {seconds:g} s measured on unity serve",
                columns=["measure", "healthy only", "with 13 misbehaving", "target", "unit"],
                rows=[
                    [name, baseline[name], loaded[name], TARGETS.get(name, ""), UNITS.get(name, "")]
                    for name in baseline
                ],
                notes=[
                    f"isolated children are capped at {ISOLATION_MEMORY_MB} MiB "
                    "(UNITY_ISOLATION_MEMORY_MB); the output cap is the default 64 KiB a minute",
                ],
            )
        )
    return tables
