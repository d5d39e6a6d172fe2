"""agents-hub: many real agents reporting to one real ``unity serve``.

A real hub subprocess runs on a fresh database (SQLite, then PostgreSQL when
``--postgres-url`` reaches one). 200 hosts (``--quick``: 20) join it through
``unity_agent.join.join`` (what ``unity-agent join`` runs), each with its own
data directory, host id (``bench-001``...) and hostname; the hub assigns each
the psutil four at join, and each instance's interval is then set to 10 s
through the API (``PATCH /api/plugins/v2/{instance}/config``). The agents run
as they run on a host (:func:`unity_agent.runtime.run_agent`), several per
process, each process one event loop (:mod:`benchmarks.agents_worker`): four
processes of 50 (``--quick``: two of 10).

After a warm-up (every first run falls within the first interval) a window of
300 s (``--quick``: 45 s) is measured: the hub's CPU time and RSS, the agent
processes' CPU and RSS, the machine's CPU, the samples stored. Then the
agents get SIGTERM (each stops its instances and sends what it holds) and the
hub's ``plugin_metrics`` is counted per instance against what the agents
committed to their spools. Sample delay: each stored sample's timestamp (the
start of its run on the agent) to the receipt of its batch at the hub (the
``push`` execution row the batch wrote; batches of one instance are stored in
order, so the n-th sample belongs to the batch whose counts cover n).

Anchors in the same run: a FastAPI route served by uvicorn validating
one-sample batches of the same documents and storing nothing (the floor of
HTTP, JSON and validation per request), and the four plugins run in this
process as the agent runs them (:func:`benchmarks.agent.measure_collection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import agents_hub_stats
from benchmarks.agent import FOUR, INTERVAL, measure_collection, set_intervals
from benchmarks.harness import POSTGRESQL, BenchmarkError, Context, Table, fresh_database
from benchmarks.ingest import ERROR_LINE, REQUEST_TIMEOUT, serving
from unity_agent.join import JoinRequestOptions, join

NAME = "agents-hub"
SUMMARY = "200 real agents x the psutil four at 10 s against one unity serve: losses, hub CPU"

JOINS_AT_ONCE = 8
WARMUP = INTERVAL + 5.0
STOP_TIMEOUT = 60.0


def _host(index: int) -> str:
    return f"bench-{index:03d}"


async def _join_all(hub_url: str, admin_token: str, root: Path, agents: int) -> list[Path]:
    """Every agent joined (its identity in its own data directory), intervals set."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(
        base_url=hub_url, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as http:
        response = await http.post(
            "/api/enrollment-tokens",
            json={"name": "bench-agents", "expires_in_hours": 1, "max_uses": agents},
            headers=headers,
        )
        if response.status_code != 201:
            raise BenchmarkError(f"enrollment token: HTTP {response.status_code} {response.text}")
        token = str(response.json()["token"])
        gate = asyncio.Semaphore(JOINS_AT_ONCE)

        async def one(index: int) -> Path:
            data_dir = root / _host(index)
            options = JoinRequestOptions(
                url=hub_url,
                token=token,
                data_dir=data_dir,
                hostname=f"node{index:03d}.bench.lan",
                host_id=_host(index),
            )
            async with gate:
                await join(options, out=io.StringIO())
                await set_intervals(http, headers, _host(index), INTERVAL)
            return data_dir

        # join() warns on stderr that http:// sends the key unencrypted: 200 times is noise.
        with contextlib.redirect_stderr(io.StringIO()):
            return list(await asyncio.gather(*(one(i) for i in range(1, agents + 1))))


def _start_workers(root: Path, dirs: list[Path], processes: int) -> list[agents_hub_stats.Worker]:
    workers = []
    for number in range(processes):
        mine = dirs[number::processes]
        result, log = root / f"worker-{number}.json", root / f"worker-{number}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.agents_worker", str(result), *map(str, mine)],
                cwd=Path(__file__).parents[1],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        workers.append(agents_hub_stats.Worker(proc, result, log))
    return workers


async def _stop_workers(workers: list[agents_hub_stats.Worker]) -> list[dict[str, Any]]:
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.terminate()
    results = []
    for worker in workers:
        try:
            code = await asyncio.to_thread(worker.proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
            raise BenchmarkError(f"agent process {worker.proc.pid} ignored SIGTERM") from None
        output = worker.log.read_text(errors="replace")
        if code != 0 or not worker.result.exists():
            raise BenchmarkError(f"agent process exited with {code}:\n{output[-3000:]}")
        found = json.loads(worker.result.read_text())
        found["errors"] = [line for line in output.splitlines() if " ERROR " in line]
        found["warnings"] = [line for line in output.splitlines() if " WARNING " in line]
        results.append(found)
    return results


async def _measure(
    ctx: Context, dialect: str, agents: int, processes: int, window: float
) -> dict[str, Any]:
    async with fresh_database(ctx, dialect) as (db, folder):
        url = db.url.render_as_string(hide_password=False)
        async with serving(url, folder) as hub:
            ctx.log(f"  {dialect}: joining {agents} agents, intervals to {INTERVAL:g} s")
            clock = time.perf_counter()
            dirs = await _join_all(hub.url, hub.admin_token(), folder / "agents", agents)
            joined = time.perf_counter() - clock
            ctx.log(f"  {dialect}: {processes} agent processes, {WARMUP:g} s warm-up, {window:g} s")
            workers = _start_workers(folder, dirs, processes)
            try:
                await asyncio.sleep(WARMUP)
                for worker in workers:
                    if worker.proc.poll() is not None:
                        raise BenchmarkError(f"an agent process exited:\n{worker.output()[-3000:]}")
                watched = await agents_hub_stats.watch(
                    db, hub.proc.pid, workers, window, postgres=dialect == POSTGRESQL
                )
            finally:
                ctx.log(f"  {dialect}: stopping the agents; they send what they hold")
                results = await _stop_workers(workers)
        # Read once the hub has stopped: nothing is stored between the queries.
        stored = await agents_hub_stats.stored_per_instance(db)
        delays = await agents_hub_stats.delays(db, watched.started_at, watched.ended_at)
        documents = await agents_hub_stats.documents(db)
        # Under overload the hub may answer 503 and log it: counted and shown, not fatal.
        output = hub.output()
        hub_errors = [line for line in output.splitlines() if ERROR_LINE.match(line)]
        if hub_errors:
            ctx.log(f"  {dialect}: the hub logged {len(hub_errors)} errors, the first:")
            ctx.log(output[output.index(hub_errors[0]) :][:1500])
    return {
        "hub_errors": hub_errors,
        "joined": joined,
        "watched": watched,
        "results": results,
        "stored": stored,
        "delays": delays,
        "documents": documents,
    }


async def run(ctx: Context) -> list[Table]:
    processes, per_process = (2, 10) if ctx.quick else (4, 50)
    agents = processes * per_process
    window = 45.0 if ctx.quick else 300.0
    measured = {
        dialect: await _measure(ctx, dialect, agents, processes, window) for dialect in ctx.dialects
    }
    documents = next(iter(measured.values()))["documents"]
    ctx.log("  anchor: FastAPI POST of one-sample batches of the same documents")
    anchor = await agents_hub_stats.fastapi_anchor(documents, 5.0 if ctx.quick else 10.0)
    ctx.log("  anchor: the four run in this process as the agent runs them")
    rounds = await measure_collection(5 if ctx.quick else 20)
    per_sample = sorted(cpu for _, cpu in rounds["agent"])[len(rounds["agent"]) // 2] / len(FOUR)
    return [
        agents_hub_stats.table(
            measured,
            agents=agents,
            processes=processes,
            window=window,
            anchor_ms=anchor * 1000,
            collect_ms=per_sample * 1000,
        )
    ]
