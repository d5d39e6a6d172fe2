"""What ``benchmarks/agents_hub.py`` reads while its agents run, and its table.

- :func:`watch`: the measured window: CPU time of the hub, of the agent
  processes, of the PostgreSQL server and of the whole machine; RSS of the hub
  and of the agent processes every 2 s; samples and batches the hub stored.
- :func:`stored_per_instance`, :func:`delays`, :func:`documents`: read from the
  benchmark's database afterwards.
- :func:`fastapi_anchor`: the floor of one agent request: uvicorn serving a
  FastAPI route that validates a one-sample batch and stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, select

from benchmarks.agent import FOUR, INTERVAL
from benchmarks.harness import BenchmarkError, Table, percentile
from benchmarks.ingest import REQUEST_TIMEOUT, serving
from unity.storage.db import Database
from unity.storage.models import LatestMetric, PluginExecution, PluginMetric

SAMPLE_EVERY = 2.0
ANCHOR_CLIENTS = 8
MIB = 2**20


@dataclass
class Worker:
    """One process of agents (:mod:`benchmarks.agents_worker`)."""

    proc: subprocess.Popen[bytes]
    result: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Watched:
    """The measured window."""

    seconds: float
    started_at: datetime
    ended_at: datetime
    hub_cpu: float
    hub_rss: list[float]  # MiB, every SAMPLE_EVERY
    agents_cpu: float
    agents_rss: list[float]  # MiB, all agent processes together
    postgres_cpu: float | None
    machine_busy: float  # share of all cores, 0..1
    stored: int
    batches: int


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process so far: each postmaster, the
    backends it reaped (its children's times) and the backends alive now."""
    total = 0.0
    for process in psutil.process_iter(["name", "ppid"]):
        with contextlib.suppress(psutil.Error):
            if process.info["name"] != "postgres":
                continue
            parent = psutil.Process(process.info["ppid"])
            times = process.cpu_times()
            total += times.user + times.system
            if parent.name() != "postgres":  # the postmaster
                total += times.children_user + times.children_system
    return total


def _machine() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine so far."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    all_ = sum(times)
    return all_ - idle, all_


async def _count(db: Database, query: Any) -> int:
    async with db.connection() as conn:
        return int((await conn.execute(query)).scalar_one())


_STORED = select(func.count()).select_from(PluginMetric)
_BATCHES = select(func.count()).where(PluginExecution.trigger == "push")


async def watch(
    db: Database, hub_pid: int, workers: list[Worker], seconds: float, *, postgres: bool
) -> Watched:
    hub = psutil.Process(hub_pid)
    agents = [psutil.Process(w.proc.pid) for w in workers]
    stored, batches = await _count(db, _STORED), await _count(db, _BATCHES)
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    hub_cpu, agents_cpu = _cpu(hub), sum(_cpu(a) for a in agents)
    pg_cpu = _postgres_cpu() if postgres else 0.0
    busy, all_ = _machine()
    hub_rss: list[float] = []
    agents_rss: list[float] = []
    while (elapsed := time.perf_counter() - clock) < seconds:
        hub_rss.append(hub.memory_info().rss / MIB)
        agents_rss.append(sum(a.memory_info().rss for a in agents) / MIB)
        for worker in workers:
            if worker.proc.poll() is not None:
                raise BenchmarkError(f"an agent process exited:\n{worker.output()[-3000:]}")
        await asyncio.sleep(min(SAMPLE_EVERY, seconds - elapsed))
    elapsed = time.perf_counter() - clock
    hub_cpu, agents_cpu = _cpu(hub) - hub_cpu, sum(_cpu(a) for a in agents) - agents_cpu
    pg = _postgres_cpu() - pg_cpu if postgres else None
    busy_after, all_after = _machine()
    ended_at = datetime.now(UTC)
    hub_rss.append(hub.memory_info().rss / MIB)
    agents_rss.append(sum(a.memory_info().rss for a in agents) / MIB)
    return Watched(
        seconds=elapsed,
        started_at=started_at,
        ended_at=ended_at,
        hub_cpu=hub_cpu,
        hub_rss=hub_rss,
        agents_cpu=agents_cpu,
        agents_rss=agents_rss,
        postgres_cpu=pg,
        machine_busy=(busy_after - busy) / (all_after - all_),
        stored=await _count(db, _STORED) - stored,
        batches=await _count(db, _BATCHES) - batches,
    )


async def stored_per_instance(db: Database) -> dict[str, int]:
    query = select(PluginMetric.plugin_id, func.count()).group_by(PluginMetric.plugin_id)
    async with db.connection() as conn:
        return {str(p): int(n) for p, n in (await conn.execute(query)).all()}


async def delays(db: Database, start: datetime, end: datetime) -> list[float] | None:
    """Seconds from each sample's timestamp to its batch's receipt, for the batches
    received in [start, end]; None when the batches do not account for the samples."""
    samples: dict[str, list[datetime]] = defaultdict(list)
    receipts: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    async with db.connection() as conn:
        rows = await conn.stream(
            select(PluginMetric.plugin_id, PluginMetric.timestamp).order_by(
                PluginMetric.plugin_id, PluginMetric.id
            )
        )
        async for plugin, stamp in rows:
            samples[plugin].append(stamp)
        executions = await conn.execute(
            select(
                PluginExecution.plugin_id,
                PluginExecution.started_at,
                PluginExecution.metrics_count,
            )
            .where(PluginExecution.trigger == "push")
            .order_by(PluginExecution.plugin_id, PluginExecution.id)
        )
        for plugin, at, count in executions.all():
            receipts[plugin].append((at, count))
    found: list[float] = []
    for plugin, stamps in samples.items():
        if sum(count for _, count in receipts[plugin]) != len(stamps):
            return None
        position = 0
        for at, count in receipts[plugin]:
            if start <= at <= end:
                found.extend((at - s).total_seconds() for s in stamps[position : position + count])
            position += count
    return found


async def documents(db: Database) -> list[dict[str, Any]]:
    """A stored document of each of the four plugins (of whichever agent)."""
    found = []
    async with db.connection() as conn:
        for cls in FOUR:
            pattern = f"{cls().get_metadata().id}@%"
            query = select(LatestMetric.data).where(LatestMetric.plugin_id.like(pattern))
            data = (await conn.execute(query.limit(1))).scalar_one_or_none()
            if data is None:
                raise BenchmarkError(f"no instance of {pattern} stored a document")
            found.append(dict(data))
    return found


async def fastapi_anchor(docs: list[dict[str, Any]], seconds: float) -> float:
    """Server CPU seconds per POST of a one-sample batch that FastAPI validates and
    drops, ANCHOR_CLIENTS clients posting the documents back to back."""
    command = [
        sys.executable,
        *("-m", "uvicorn", "benchmarks.ingest_anchors:app", "--host", "127.0.0.1"),
        *("--port", "{port}", "--log-level", "warning"),
    ]
    stamp = datetime.now(UTC).isoformat()

    def body(n: int) -> bytes:
        sample = {"host": "node001.bench.lan", "timestamp": stamp, "data": docs[n % len(docs)]}
        return json.dumps({"batch_id": uuid.uuid4().hex, "samples": [sample]}).encode()

    posted = 0

    async def client(deadline: float, counting: bool) -> None:
        nonlocal posted
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Content-Type": "application/json"},
            timeout=REQUEST_TIMEOUT,
            trust_env=False,
        ) as http:
            n = 0
            while time.perf_counter() < deadline:
                response = await http.post("/points", content=body(n))
                if response.status_code != 200:
                    raise BenchmarkError(f"anchor: HTTP {response.status_code} {response.text}")
                n += 1
                posted += counting

    with tempfile.TemporaryDirectory(prefix="unity-bench-") as scratch:
        async with serving("", Path(scratch), command) as server:
            warm = time.perf_counter() + 1.0
            await asyncio.gather(*(client(warm, False) for _ in range(ANCHOR_CLIENTS)))
            cpu = server.cpu_seconds()
            end = time.perf_counter() + seconds
            await asyncio.gather(*(client(end, True) for _ in range(ANCHOR_CLIENTS)))
            cpu = server.cpu_seconds() - cpu
    return cpu / posted


def _ms(values: list[float] | None, q: float) -> float:
    return math.nan if not values else percentile(values, q) * 1000


def column(found: dict[str, Any], anchor_ms: float, collect_ms: float) -> list[Any]:
    """One dialect's values, in the order of MEASURES."""
    watched: Watched = found["watched"]
    results: list[dict[str, Any]] = found["results"]
    stored: dict[str, int] = found["stored"]
    collected: dict[str, int] = {}
    for result in results:
        collected.update(result["collected"])
    expected = sum(r["agents"] * len(FOUR) * r["seconds"] / INTERVAL for r in results)
    lost = sum(max(0, n - stored.get(i, 0)) for i, n in collected.items())
    extra = sum(max(0, n - collected.get(i, 0)) for i, n in stored.items())
    at_stop = sum(sum(r["left_at_stop"].values()) for r in results)
    left = sum(sum(r["left"].values()) for r in results)
    per_sample = watched.hub_cpu / watched.stored * 1000 if watched.stored else math.nan
    agents_per_sample = watched.agents_cpu / watched.stored * 1000 if watched.stored else math.nan
    pg = watched.postgres_cpu
    return [
        found["joined"],
        sum(collected.values()),
        sum(collected.values()) / expected,
        sum(stored.values()),
        lost,
        extra,
        at_stop,
        max(r["drain_seconds"] for r in results),
        left,
        sum(r["dropped"] + r["rejected"] for r in results),
        sum(len(r["failures"]) + len(r["errors"]) for r in results),
        sum(len(r["warnings"]) for r in results),
        len(found["hub_errors"]),
        watched.stored / watched.seconds,
        watched.stored / watched.batches if watched.batches else math.nan,
        watched.hub_cpu / watched.seconds,
        per_sample,
        anchor_ms,
        per_sample / anchor_ms,
        watched.hub_rss[0],
        max(watched.hub_rss),
        watched.hub_rss[-1],
        watched.agents_cpu / watched.seconds,
        agents_per_sample,
        collect_ms,
        max(watched.agents_rss),
        max(watched.agents_rss) / sum(r["agents"] for r in results),
        None if pg is None else pg / watched.seconds,
        watched.machine_busy * 100,
        _ms(found["delays"], 0.5),
        _ms(found["delays"], 0.99),
        _ms(found["delays"], 1.0),
    ]


MEASURES: list[tuple[str, str]] = [
    ("joining every agent and setting its intervals", "s"),
    ("samples collected by the agents (whole run)", ""),
    ("collected / expected at one per 10 s per instance", ""),
    ("samples stored by the hub (whole run, after the drain)", ""),
    ("lost: collected, not stored (checked per instance)", ""),
    ("stored, not collected", ""),
    ("left in the agents' spools when they stopped", ""),
    ("drain: their senders sending what was left", "s"),
    ("left in the agents' spools after the drain", ""),
    ("dropped (spool full) + rejected by the hub", ""),
    ("agent failures + ERROR lines in the agents' logs", ""),
    ("WARNING lines in the agents' logs (hub unreachable: timeouts, 503)", ""),
    ("ERROR lines in the hub's log", ""),
    ("window: samples stored per second", "1/s"),
    ("window: samples per batch", ""),
    ("hub process CPU", "cores"),
    ("hub CPU per stored sample", "ms"),
    ("anchor: FastAPI POST of a one-sample batch, storing nothing: CPU", "ms"),
    ("hub CPU per sample / anchor", ""),
    ("hub RSS at the window's start", "MiB"),
    ("hub RSS max", "MiB"),
    ("hub RSS at the window's end", "MiB"),
    ("agent processes CPU (all of them)", "cores"),
    ("agent processes CPU per stored sample", "ms"),
    ("anchor: one run of one of the four in this process (thread, encode, spool)", "ms"),
    ("agent processes RSS (all of them, max)", "MiB"),
    ("  of it per agent", "MiB"),
    ("PostgreSQL server CPU (all its processes)", "cores"),
    ("machine CPU busy (all processes, all cores)", "%"),
    ("sample delay p50: run start on the agent to receipt at the hub", "ms"),
    ("sample delay p99", "ms"),
    ("sample delay max", "ms"),
]


def _per_plugin(found: dict[str, Any]) -> str:
    """Collected / expected of each of the four (a plugin that falls behind shows)."""
    results: list[dict[str, Any]] = found["results"]
    expected = sum(r["agents"] * r["seconds"] / INTERVAL for r in results)
    collected: Counter[str] = Counter()
    for result in results:
        for instance, count in result["collected"].items():
            collected[instance.split("@", 1)[0]] += count
    return ", ".join(f"{plugin} {n / expected:.3f}" for plugin, n in sorted(collected.items()))


def table(
    measured: dict[str, dict[str, Any]],
    *,
    agents: int,
    processes: int,
    window: float,
    anchor_ms: float,
    collect_ms: float,
) -> Table:
    values = {d: column(found, anchor_ms, collect_ms) for d, found in measured.items()}
    result = Table(
        title=f"agents-hub: {agents} agents ({processes} processes) x the psutil four at "
        f"{INTERVAL:g} s, {window:g} s window, against unity serve",
        columns=["measure", *values, "unit"],
    )
    for index, (label, unit) in enumerate(MEASURES):
        result.rows.append([label, *(v[index] for v in values.values()), unit])
    for dialect, found in measured.items():
        result.notes.append(f"{dialect}: collected / expected per plugin: {_per_plugin(found)}")
        kinds = Counter(line.split(None, 3)[-1][:150] for line in found["hub_errors"])
        result.notes.extend(f"{dialect} hub error, {n} x: {t}" for t, n in kinds.most_common(3))
    result.notes[:0] = [
        f"Each agent is unity_agent.runtime.run_agent with its own identity, data directory "
        f"(spool), host id and hostname; {agents // processes} per process on one event loop; "
        "each instance on its own thread, as on a host.",
        "Collected: samples the agents committed to their spools; stored: rows of "
        "plugin_metrics per instance once the agents stopped (SIGTERM: each stops its "
        "instances and gives its last send 5 s) and what they still held was sent by their "
        "own senders, as their next start would send it (the drain). "
        "Expected: agents x 4 x seconds run / 10.",
        "Window: after a warm-up of one interval + 5 s. CPU in cores (1.0 = one core busy), "
        f"user + system, from psutil; RSS sampled every {SAMPLE_EVERY:g} s. The hub's CPU "
        "covers every request: the batches, and each agent's assignments poll (every 10 s) "
        "and status report (when it changed, else every 6th poll).",
        "Anchors, same run: uvicorn + FastAPI validating a one-sample batch of the same "
        f"documents ({ANCHOR_CLIENTS} clients back to back); the four run in this process as "
        "the agent runs them (Instance.run_once), CPU per run (median round / 4).",
        "PostgreSQL server CPU counts every process of the server, also any other use of it.",
        "Sample delay: a sample's timestamp (its run's start) to the hub's receipt of its "
        "batch (the push execution row), for batches received in the window.",
    ]
    return result
