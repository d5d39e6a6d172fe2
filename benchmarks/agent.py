"""agent: what ``unity-agent`` costs a host, next to bare Python and bare psutil.

Two measurements, each next to its baseline in the same run:

* **idle** (needs the hub's agent API): a real ``unity serve`` on a fresh
  SQLite database; an enrollment token from ``POST /api/enrollment-tokens``; a
  real join (``HubClient.join_agent``, the identity saved as the agent saves
  it); the psutil four the hub assigns at join set to 10 s (``PATCH
  /api/plugins/v2/{instance}/config``); then ``python -m unity_agent.runtime`` as its
  own process. After a warm-up (every first run is within the first interval)
  its CPU time and resident memory are read over the window (60 s; ``--quick``
  15 s). The baseline: ``python -c "import unity_sdk, psutil"``, its RSS once
  the imports are done. Goals: RSS <= 1.5x the baseline, CPU <= 1 % of a core.
  A hub without the agent API (404 at join) leaves this table with a note.
* **collection**, in this process: the four psutil plugins run as the agent
  runs them (``Instance.run_once``: the plugin's thread, the document encoded
  and checked, the sample committed to a real spool), one round of all four,
  against the plain psutil calls for the same data
  (:func:`benchmarks.collection.psutil_same_data`), interleaved round by
  round. Goal: <= 1.3x.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.collection import PAUSE, psutil_same_data
from benchmarks.harness import BenchmarkError, Context, Table
from benchmarks.ingest import REQUEST_TIMEOUT, serving
from unity_agent.identity import AgentIdentity, save_identity
from unity_agent.scheduler import Instance, Timing
from unity_agent.spool import SPOOL_FILE, Spool
from unity_catalogue.disk_monitor import DiskMonitorPlugin
from unity_catalogue.network_monitor import NetworkMonitorPlugin
from unity_catalogue.platform import host_platform
from unity_catalogue.process_monitor import ProcessMonitorPlugin
from unity_catalogue.system_info import SystemInfoPlugin
from unity_sdk import Assignment, HubClient, HubRequestError, PluginBase, instance_id

NAME = "agent"
SUMMARY = "an idle unity-agent with the psutil four (RSS, CPU) and its collection vs bare psutil"

FOUR: list[type[PluginBase[Any]]] = [
    SystemInfoPlugin,
    DiskMonitorPlugin,
    NetworkMonitorPlugin,
    ProcessMonitorPlugin,
]
HOST_ID = "bench-agent"
INTERVAL = 10.0
WARMUP = 12.0  # every first run falls within the first interval (start_delay)
BASELINE = "import unity_sdk, psutil"
# Prints the resident set (KiB) of the baseline once its imports are done.
_BASELINE_SCRIPT = (
    f"{BASELINE}\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmRSS:'):\n"
    "        print(line.split()[1])\n"
)


# -- collection ----------------------------------------------------------------------


def _instances(spool: Spool) -> list[Instance]:
    instances = []
    for cls in FOUR:
        plugin_id = cls().get_metadata().id
        given = Assignment(
            instance_id=instance_id(plugin_id, HOST_ID), plugin=plugin_id, interval=INTERVAL
        )
        instances.append(
            Instance(
                given,
                cls(),
                host="bench-host",
                on_sample=spool.append,
                on_health=lambda *_: None,
                timing=Timing(jitter=0.0),
            )
        )
    return instances


async def measure_collection(rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per contender, (wall s, CPU s) of each counted round."""
    with tempfile.TemporaryDirectory(prefix="unity-bench-agent-") as scratch:
        spool = Spool(Path(scratch) / SPOOL_FILE)
        instances = _instances(spool)
        try:
            for instance in instances:
                await instance.enable()

            async def agent_round() -> None:
                for instance in instances:
                    outcome = await instance.run_once()
                    if outcome.status != "success":
                        raise BenchmarkError(f"{instance.id}: {outcome.error}")

            async def psutil_round() -> None:
                psutil_same_data()

            contenders = {"agent": agent_round, "psutil": psutil_round}
            for call in contenders.values():  # warm-up: rates need a previous sample
                await call()
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
            for _ in range(rounds):
                await asyncio.sleep(PAUSE)
                for name, call in contenders.items():
                    wall, cpu = time.perf_counter(), time.process_time()
                    await call()
                    times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            if len(spool) != 4 * (rounds + 1):
                raise BenchmarkError(f"{len(spool)} samples spooled, expected {4 * (rounds + 1)}")
        finally:
            await asyncio.gather(*(i.stop(1.0) for i in instances))
            spool.close()
    return times


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def collection_table(ctx: Context) -> Table:
    rounds = 5 if ctx.quick else 30
    ctx.log(f"agent: collection, {rounds} rounds of each, interleaved")
    times = await measure_collection(rounds)
    wall = {name: _median_ms([w for w, _ in rows]) for name, rows in times.items()}
    cpu = {name: _median_ms([c for _, c in rows]) for name, rows in times.items()}
    return Table(
        f"agent: one collection round of the psutil four (median of {rounds})",
        ["what", "wall ms", "CPU ms", "agent / it (wall)", "agent / it (CPU)", "goal"],
        [
            [
                "agent: the four instances' runs, spooled (thread, encode, check, commit)",
                wall["agent"],
                cpu["agent"],
                None,
                None,
                "",
            ],
            [
                "psutil: the same data, plain calls",
                wall["psutil"],
                cpu["psutil"],
                wall["agent"] / wall["psutil"],
                cpu["agent"] / cpu["psutil"],
                "≤ 1.3",
            ],
        ],
        notes=["CPU is time.process_time() of this process (all threads)"],
    )


# -- idle ----------------------------------------------------------------------------


def baseline_rss_mib(prelude: str = "") -> float:
    done = subprocess.run(
        [sys.executable, "-c", prelude + _BASELINE_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout) / 1024


def httpx_cli_mib() -> float:
    """What httpx's command-line extras cost a process that imports httpx here.

    httpx imports its CLI (rich, pygments, click) whenever they are installed: in
    this environment they are (the hub depends on them), on a host with only
    unity-agent they are not, so the agent measured here carries them."""
    with_cli = baseline_rss_mib("import httpx\n")
    without = baseline_rss_mib("import sys\nsys.modules['httpx._main'] = None\nimport httpx\n")
    return with_cli - without


async def _join(hub_url: str, admin_token: str, data_dir: Path) -> bool:
    """Enroll a host and assign it the psutil four; False when the hub has no agent API."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(
        base_url=hub_url, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as http:
        response = await http.post(
            "/api/enrollment-tokens",
            json={"name": "bench-agent", "expires_in_hours": 1, "max_uses": 1},
            headers=headers,
        )
        if response.status_code != 201:
            raise BenchmarkError(f"enrollment token: HTTP {response.status_code} {response.text}")
        token = str(response.json()["token"])
        async with HubClient(hub_url, max_retries=0) as client:
            try:
                joined = await client.join_agent(
                    host_platform(), enrollment_token=token, host_id=HOST_ID
                )
            except HubRequestError as exc:
                if exc.status in (404, 405):
                    return False
                raise
        save_identity(
            data_dir,
            AgentIdentity(
                hub_url=hub_url,
                host_id=joined.host_id,
                key_id=joined.key_id,
                api_key=joined.api_key,
            ),
        )
        await set_intervals(http, headers, joined.host_id, INTERVAL)
    return True


async def set_intervals(
    http: httpx.AsyncClient, headers: dict[str, str], host_id: str, interval: float
) -> None:
    """The hub assigns the psutil four at join, at their default intervals: each
    instance's interval is set through the API, as an operator would."""
    for cls in FOUR:
        instance = instance_id(cls().get_metadata().id, host_id)
        response = await http.patch(
            f"/api/plugins/v2/{instance}/config", json={"interval": interval}, headers=headers
        )
        if response.status_code != 200:
            raise BenchmarkError(
                f"interval of {instance}: HTTP {response.status_code} {response.text[:300]}"
            )


def _watch(pid: int, seconds: float) -> dict[str, float]:
    """CPU share of a core and RSS (MiB; last and peak) of ``pid`` over ``seconds``."""
    process = psutil.Process(pid)
    before = process.cpu_times()
    started = time.perf_counter()
    peak = 0.0
    while time.perf_counter() - started < seconds:
        peak = max(peak, process.memory_info().rss / 2**20)
        time.sleep(1.0)
    after = process.cpu_times()
    elapsed = time.perf_counter() - started
    used = (after.user - before.user) + (after.system - before.system)
    return {
        "cpu_percent": 100 * used / elapsed,
        "rss_mib": process.memory_info().rss / 2**20,
        "peak_mib": peak,
        "threads": float(process.num_threads()),
    }


async def measure_idle(ctx: Context, window: float) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory(prefix="unity-bench-agent-") as scratch:
        folder = Path(scratch)
        async with serving(f"sqlite+aiosqlite:///{folder / 'unity.db'}", folder) as hub:
            data_dir = folder / "agent"
            if not await _join(hub.url, hub.admin_token(), data_dir):
                return None
            log = (folder / "agent.log").open("wb")
            agent = subprocess.Popen(
                [sys.executable, "-m", "unity_agent.runtime", "--data-dir", str(data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                ctx.log(f"agent: idle agent, {WARMUP:g} s warm-up then {window:g} s measured")
                await asyncio.sleep(WARMUP)
                if agent.poll() is not None:
                    raise BenchmarkError(
                        f"the agent exited with {agent.returncode}:\n"
                        f"{(folder / 'agent.log').read_text()[-2000:]}"
                    )
                found = await asyncio.to_thread(_watch, agent.pid, window)
            finally:
                agent.terminate()
                code = await asyncio.to_thread(agent.wait, 30)
                log.close()
            output = (folder / "agent.log").read_text(errors="replace")
            if code != 0 or " ERROR " in output:
                raise BenchmarkError(f"the agent exited with {code}:\n{output[-2000:]}")
            with Spool(data_dir / SPOOL_FILE) as spool:
                found["left_spooled"] = float(len(spool))
            stored = _stored(folder / "unity.db")
        # At 10 s every instance ran at least once per 10 s of the window; at the
        # four's default intervals (30-60 s) they would not have.
        least = int(window // INTERVAL)
        if len(stored) != len(FOUR) or min(stored.values()) < least:
            raise BenchmarkError(f"the hub stored {stored}; expected >= {least} per instance")
        found["stored"] = float(sum(stored.values()))
        return found


def _stored(database: Path) -> dict[str, int]:
    """Samples the hub stored per plugin instance of the agent's host."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT plugin_id, count(*) FROM plugin_metrics WHERE plugin_id LIKE ? "
            "GROUP BY plugin_id",
            (f"%@{HOST_ID}",),
        ).fetchall()
    return {str(plugin): int(count) for plugin, count in rows}


async def idle_table(ctx: Context) -> Table:
    window = 15.0 if ctx.quick else 60.0
    found = await measure_idle(ctx, window)
    baseline = await asyncio.to_thread(baseline_rss_mib)
    cli = await asyncio.to_thread(httpx_cli_mib)
    title = f"agent: idle, the psutil four at {INTERVAL:g} s ({window:g} s window)"
    columns = ["what", "RSS MiB", "peak RSS MiB", "CPU % of a core", "RSS / baseline", "goal"]
    if found is None:
        return Table(
            title,
            columns,
            [[f'python -c "{BASELINE}"', baseline, None, None, None, ""]],
            notes=["not measured: this hub has no agent API yet (POST /api/agents/v1/join: 404)"],
        )
    return Table(
        title,
        columns,
        [
            [
                "unity-agent (python -m unity_agent.runtime)",
                found["rss_mib"],
                found["peak_mib"],
                found["cpu_percent"],
                found["rss_mib"] / baseline,
                "RSS ≤ 1.5x, CPU ≤ 1 %",
            ],
            [f'python -c "{BASELINE}"', baseline, None, None, None, ""],
        ],
        notes=[
            f"agent threads: {found['threads']:g}; samples the hub stored: "
            f"{found['stored']:g}; left in the agent's spool after SIGTERM: "
            f"{found['left_spooled']:g}",
            f"of the agent's RSS, {cli:.1f} MiB are httpx's CLI (rich, pygments, click), "
            "imported because the hub's dependencies put them here; a host with only "
            f"unity-agent has none: RSS / baseline there ~ "
            f"{(found['rss_mib'] - cli) / baseline:.2f}",
        ],
    )


async def run(ctx: Context) -> list[Table]:
    return [await collection_table(ctx), await idle_table(ctx)]
