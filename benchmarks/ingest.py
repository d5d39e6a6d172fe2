"""ingest: external plugins pushing metric batches over HTTP to a real ``unity serve``.

A real hub subprocess runs on a fresh database (SQLite, then PostgreSQL). Fifty
external plugins enrol through the API, each getting its own key; then fifty
clients, one keep-alive connection and one key each, post batches of 100 small
samples back to back. Every request's latency is recorded and every answer
must be 200 with all 100 samples stored. Afterwards the database must hold
exactly what the clients were told was stored.

Then eight of the clients post on for a shorter window: the latency and the
hub's CPU per batch at a load a small site sees.

The anchors, measured in the same run on the same database once the hub has
stopped (:mod:`benchmarks.ingest_anchors`): the same rows into
``plugin_metrics`` with SQLAlchemy Core ``insert()`` in chunks of 10,000 per
transaction, and with the bare driver 100 rows per transaction (``aiosqlite``
``executemany``, ``asyncpg`` ``copy_records_to_table``): the floor of what
storing those samples costs, without HTTP or validation. And the CPU a
FastAPI app served by uvicorn spends on a POST of the same 100 points that it
validates and does not store, at the same eight clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, insert, select

from benchmarks.harness import BenchmarkError, Context, Table, fresh_database, percentile
from benchmarks.ingest_anchors import ROWS_PER_TRANSACTION, Points, raw_driver
from unity.storage.db import Database
from unity.storage.models import Base, BatchReceipt, PluginMetric
from unity.storage.types import utcnow
from unity_sdk import (
    BatchAccepted,
    MetricBatch,
    PluginMetadata,
    RegisterRequest,
    RegisterResponse,
    accept_batch_json,
)

NAME = "ingest"
SUMMARY = "samples/s and latency of concurrent HTTP clients posting batches vs a raw bulk insert"

BATCH = 100
CHUNK = 10_000
FEW = 8  # clients of the second window: latency and CPU per batch at a small site's load
RAW_DRIVER_ROWS = 200_000  # at most this many of the hub's rows again through the bare driver
WARMUP = 1.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 60.0
UNITY = Path(sys.executable).with_name("unity")
TOKEN_RE = re.compile(r"unity_[a-z0-9]{12}_[A-Za-z0-9_-]{43}")
ERROR_LINE = re.compile(r"^\S+ \S+ (?:ERROR|CRITICAL)\b", re.MULTILINE)
METRICS: list[dict[str, str]] = [
    {"name": "cpu.percent", "unit": "%"},
    {"name": "cpu.load1"},
    {"name": "memory.percent", "unit": "%"},
    {"name": "memory.used", "unit": "B"},
    {"name": "disk.percent", "unit": "%"},
    {"name": "disk.read_bytes", "unit": "B", "kind": "counter"},
    {"name": "disk.write_bytes", "unit": "B", "kind": "counter"},
    {"name": "temperature", "unit": "°C"},
]
MEASURES: list[tuple[str, str]] = [
    ("clients (one plugin key each)", ""),
    ("batches posted", ""),
    ("samples stored", ""),
    ("hub: samples stored per second", "1/s"),
    ("request latency p50", "ms"),
    ("request latency p99", "ms"),
    ("request latency max", "ms"),
    ("raw: Core insert of the same rows", "rows/s"),
    ("hub / raw", ""),
    (f"raw driver, {ROWS_PER_TRANSACTION} rows/txn (see notes)", "rows/s"),
    ("hub / raw driver", ""),
    ("rows in plugin_metrics afterwards (checked)", ""),
    ("hub process CPU", "cores"),
    ("benchmark process CPU (the clients)", "cores"),
    ("hub CPU per batch of 100", "ms"),
    (f"{FEW} clients: samples stored per second", "1/s"),
    (f"{FEW} clients: request latency p99", "ms"),
    (f"{FEW} clients: hub CPU per batch of 100", "ms"),
    (f"{FEW} clients: FastAPI POST of 100 validated points, storing nothing: CPU per batch", "ms"),
    (f"{FEW} clients: hub CPU per batch / FastAPI anchor", ""),
    ("rulebook: accept_batch_json of one batch of 100, in process", "ms"),
    ("anchor: the FastAPI anchor's model parsing the same body, in process", "ms"),
    ("rulebook / anchor model", ""),
]


def document(n: int) -> dict[str, Any]:
    """The ``n``-th document a client sends: what a small node agent reports."""
    wave = (n * 37 % 100) / 100
    return {
        "cpu": {"percent": round(4 + 70 * wave, 2), "load1": round(0.1 + 2 * wave, 2)},
        "memory": {"percent": round(30 + 25 * wave, 1), "used": 3_221_225_472 + n * 4096},
        "disk": {
            "percent": 61.3,
            "read_bytes": 1_234_567_890 + n * 8192,
            "write_bytes": 987_654_321 + n * 16_384,
        },
        "temperature": round(40 + 12 * wave, 1),
    }


@dataclass(frozen=True)
class Plan:
    """What every client sends; deterministic, so the baseline rebuilds the same rows."""

    clients: int
    base: datetime

    def plugin_id(self, client: int) -> str:
        return f"bench-ext-{client + 1:02d}"

    def host(self, client: int) -> str:
        return f"bench-node-{client + 1:02d}"

    def timestamp(self, client: int, n: int) -> datetime:
        """Distinct across all clients: sample ``n`` of every client, a millisecond apart."""
        return self.base + timedelta(milliseconds=n * self.clients + client)

    def row(self, client: int, n: int) -> dict[str, Any]:
        return {
            "plugin_id": self.plugin_id(client),
            "host": self.host(client),
            "timestamp": self.timestamp(client, n),
            "data": document(n),
        }

    def body(self, client: int, first: int) -> bytes:
        """A ``MetricBatch`` of samples ``first``... as JSON, with a new batch id."""
        host = self.host(client)
        samples = [
            {"host": host, "timestamp": self.timestamp(client, n).isoformat(), "data": document(n)}
            for n in range(first, first + BATCH)
        ]
        return json.dumps({"batch_id": uuid.uuid4().hex, "samples": samples}).encode()


@dataclass
class Hub:
    """A ``unity serve`` subprocess, its output captured to ``log``."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    ready_path: str = "/healthz"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def admin_token(self) -> str:
        """The admin token the first start printed, once."""
        tokens = set(TOKEN_RE.findall(self.output()))
        if len(tokens) != 1:
            raise BenchmarkError(f"expected one admin token in the hub output, found {len(tokens)}")
        return str(tokens.pop())

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system


@dataclass
class Client:
    """One external plugin: its own connection and key; ``sent`` numbers its samples."""

    index: int
    http: httpx.AsyncClient
    path: str
    sent: int = 0  # samples the hub said it stored, and the number of the next one
    batches: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise BenchmarkError(
            f"{response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code}, expected {status}: {response.text[:500]}"
        )


def _stop(hub: Hub) -> int:
    """SIGTERM, then the exit code; killed (and an error) if it does not stop in time."""
    if hub.proc.poll() is None:
        hub.proc.send_signal(signal.SIGTERM)
    try:
        return hub.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        hub.proc.kill()
        hub.proc.wait()
        raise BenchmarkError(f"the hub did not stop within {STOP_TIMEOUT:g} s of SIGTERM") from None


async def _wait_ready(hub: Hub) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=hub.url, timeout=2, trust_env=False) as http:
        while time.monotonic() < deadline:
            if hub.proc.poll() is not None:
                raise BenchmarkError(
                    f"the hub exited with {hub.proc.returncode} while starting:\n"
                    f"{hub.output()[-3000:]}"
                )
            try:
                if (await http.get(hub.ready_path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise BenchmarkError(f"the hub did not answer /healthz within {START_TIMEOUT:g} s")


@asynccontextmanager
async def serving(
    database_url: str, folder: Path, command: list[str] | None = None
) -> AsyncIterator[Hub]:
    """A real ``unity serve`` on a free loopback port; stopped with SIGTERM afterwards.

    ``command`` runs another server instead (``{port}`` in it is replaced)."""
    port = _free_port()
    # The caller's own UNITY_* settings (token, master key, config file) stay out.
    env = {name: value for name, value in os.environ.items() if not name.startswith("UNITY_")}
    env.update(
        UNITY_DATA_DIR=str(folder),
        UNITY_DATABASE_URL=database_url,
        UNITY_HOST="127.0.0.1",
        UNITY_PORT=str(port),
        UNITY_AUTOENABLE="[]",
        UNITY_LOG_LEVEL="WARNING",
        UNITY_CONFIG_FILE=str(folder / "absent.toml"),
    )
    log = folder / "hub.log"
    with log.open("wb") as out:
        argv = [part.replace("{port}", str(port)) for part in command or [str(UNITY), "serve"]]
        proc = subprocess.Popen(
            argv,
            cwd=Path(__file__).parents[1],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = Hub(f"http://127.0.0.1:{port}", proc, log, "/healthz" if command is None else "/docs")
    try:
        await _wait_ready(hub)
        yield hub
    except BaseException:
        with suppress(BenchmarkError):  # the first failure is the one to report
            _stop(hub)
        raise
    code = _stop(hub)
    if code not in (0, -signal.SIGTERM):
        raise BenchmarkError(f"the hub exited with {code}:\n{hub.output()[-3000:]}")


def plugin_metadata(plan: Plan, client: int) -> dict[str, Any]:
    """What client ``client`` registers: its plugin's metadata, eight declared metrics."""
    return {
        "id": plan.plugin_id(client),
        "name": f"Bench external {client + 1:02d}",
        "version": "1.0.0",
        "description": "Benchmark external plugin posting node metrics.",
        "metrics": METRICS,
        "default_interval": 10,
    }


def _rulebook_cpu(rounds: int) -> tuple[float, float]:
    """Milliseconds of CPU (best of five rounds) for the hub's check of one batch,
    ``accept_batch_json``, and for the FastAPI anchor's pydantic model parsing the
    same body; in this process, no HTTP."""
    plan = Plan(1, base=utcnow().replace(microsecond=0) - timedelta(days=1))
    metadata = PluginMetadata.model_validate(plugin_metadata(plan, 0))
    body = plan.body(0, 0)
    batch = accept_batch_json(metadata, body)
    if len(batch.samples) != BATCH or batch.samples[0].data != document(0):
        raise BenchmarkError(f"accept_batch_json read {len(batch.samples)} samples wrongly")
    points = Points.model_validate_json(body)
    if len(points.samples) != BATCH:
        raise BenchmarkError(f"the anchor model read {len(points.samples)} samples")

    def best(check: Callable[[], object]) -> float:
        spent = []
        for _ in range(5):
            start = time.process_time()
            for _ in range(rounds):
                check()
            spent.append(time.process_time() - start)
        return min(spent) / rounds * 1000

    return best(lambda: accept_batch_json(metadata, body)), best(
        lambda: Points.model_validate_json(body)
    )


async def _enrol(hub: Hub, plan: Plan) -> list[str]:
    """One enrollment token for every client, then one registration (and key) each."""
    async with httpx.AsyncClient(
        base_url=hub.url, timeout=REQUEST_TIMEOUT, trust_env=False
    ) as http:
        response = await http.post(
            "/api/enrollment-tokens",
            json={"name": "bench-ingest", "expires_in_hours": 1, "max_uses": plan.clients},
            headers={"Authorization": f"Bearer {hub.admin_token()}"},
        )
        _expect(response, 201)
        enrollment = str(response.json()["token"])
        keys: list[str] = []
        for client in range(plan.clients):
            metadata = plugin_metadata(plan, client)
            request = RegisterRequest(metadata=metadata, hostname=plan.host(client))
            response = await http.post(
                "/api/plugins/v2/register",
                json=request.model_dump(mode="json"),
                headers={"Authorization": f"Bearer {enrollment}"},
            )
            _expect(response, 201)
            keys.append(RegisterResponse.model_validate_json(response.content).api_key)
    return keys


async def _client(stack: AsyncExitStack, hub: Hub, plan: Plan, index: int, key: str) -> Client:
    http = httpx.AsyncClient(
        base_url=hub.url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT,
        trust_env=False,
    )
    await stack.enter_async_context(http)
    return Client(index, http, f"/api/plugins/v2/{plan.plugin_id(index)}/metrics")


async def _post_until(client: Client, plan: Plan, deadline: float, latencies: list[float]) -> None:
    while time.perf_counter() < deadline:
        body = plan.body(client.index, client.sent)
        clock = time.perf_counter()
        response = await client.http.post(client.path, content=body)
        latencies.append(time.perf_counter() - clock)
        _expect(response, 200)
        accepted = BatchAccepted.model_validate_json(response.content)
        if accepted.stored != BATCH or accepted.duplicate:
            raise BenchmarkError(f"{client.path}: {accepted!r}, expected {BATCH} stored")
        client.sent += BATCH
        client.batches += 1


async def _phase(clients: list[Client], plan: Plan, seconds: float) -> tuple[list[float], float]:
    """Every client posting back to back for ``seconds``: the latencies and the wall time."""
    latencies: list[float] = []
    clock = time.perf_counter()
    deadline = clock + seconds
    try:
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(_post_until(client, plan, deadline, latencies))
    except* BenchmarkError as failures:
        raise failures.exceptions[0] from None
    return latencies, time.perf_counter() - clock


def _window_rows(plan: Plan, spans: list[tuple[int, int, int]]) -> Iterator[dict[str, Any]]:
    """The samples ``(client, first, end)`` in the order the hub received them: batch by batch,
    round robin over the clients."""
    longest = max(end - first for _, first, end in spans)
    for offset in range(0, longest, BATCH):
        for client, first, end in spans:
            for n in range(first + offset, min(first + offset + BATCH, end)):
                yield plan.row(client, n)


async def _raw(db: Database, plan: Plan, spans: list[tuple[int, int, int]]) -> tuple[int, float]:
    """The same rows again with Core ``insert()``, CHUNK per transaction: (rows, seconds).

    Only the transactions are timed, not building the dicts."""
    rows, seconds = 0, 0.0
    source = _window_rows(plan, spans)
    while chunk := list(islice(source, CHUNK)):
        clock = time.perf_counter()
        async with db.engine.begin() as conn:
            await conn.execute(insert(PluginMetric), chunk)
        seconds += time.perf_counter() - clock
        rows += len(chunk)
    return rows, seconds


async def _count(db: Database, model: type[Base]) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


async def _window(
    hub: Hub, team: list[Client], plan: Plan, seconds: float
) -> tuple[list[float], float, float, int]:
    """Every client of ``team`` posting for ``seconds`` after a warm-up: the latencies,
    the wall time, the hub's CPU seconds and the batches posted."""
    await _phase(team, plan, WARMUP)
    before = sum(client.batches for client in team)
    hub_cpu = hub.cpu_seconds()
    latencies, wall = await _phase(team, plan, seconds)
    batches = sum(client.batches for client in team) - before
    return latencies, wall, hub.cpu_seconds() - hub_cpu, batches


async def _measure(ctx: Context, dialect: str, clients: int, seconds: float) -> list[Any]:
    """One value per row of ``MEASURES`` (the FastAPI anchor's two left out)."""
    async with fresh_database(ctx, dialect) as (db, folder):
        plan = Plan(clients, base=utcnow().replace(microsecond=0) - timedelta(days=1))
        MetricBatch.model_validate_json(plan.body(0, 0))  # the bodies keep to the wire model
        ctx.log(f"  {dialect}: starting unity serve, enrolling {clients} external plugins")
        async with serving(db.url.render_as_string(hide_password=False), folder) as hub:
            keys = await _enrol(hub, plan)
            async with AsyncExitStack() as stack:
                team = [
                    await _client(stack, hub, plan, index, key) for index, key in enumerate(keys)
                ]
                ctx.log(f"  {dialect}: {WARMUP:g} s warm-up, then {seconds:g} s measured")
                await _phase(team, plan, WARMUP)
                firsts = [client.sent for client in team]
                warm_batches = sum(client.batches for client in team)
                hub_cpu, own_cpu = hub.cpu_seconds(), time.process_time()
                latencies, wall = await _phase(team, plan, seconds)
                hub_cpu = hub.cpu_seconds() - hub_cpu
                own_cpu = time.process_time() - own_cpu
                ends = [client.sent for client in team]
                batches = sum(client.batches for client in team) - warm_batches
                few_seconds = min(seconds, 10.0)
                ctx.log(f"  {dialect}: {FEW} clients for {few_seconds:g} s")
                few = await _window(hub, team[:FEW], plan, few_seconds)
        errors = ERROR_LINE.findall(hub.output())
        if errors:
            raise BenchmarkError(f"the hub logged {len(errors)} errors:\n{hub.output()[-3000:]}")

        told = sum(client.sent for client in team)
        posted = sum(client.batches for client in team)
        stored, receipts = await _count(db, PluginMetric), await _count(db, BatchReceipt)
        if (stored, receipts) != (told, posted):
            raise BenchmarkError(
                f"the database holds {stored} samples in {receipts} batches; "
                f"the clients were told {told} in {posted}"
            )
        spans = [(c.index, first, end) for c, first, end in zip(team, firsts, ends, strict=True)]
        samples = sum(end - first for _, first, end in spans)
        ctx.log(f"  {dialect}: raw inserts of the same {samples:,} rows")
        raw_rows, raw_seconds = await _raw(db, plan, spans)
        driver, driver_rows, driver_seconds = await raw_driver(
            db, islice(_window_rows(plan, spans), RAW_DRIVER_ROWS)
        )
        if await _count(db, PluginMetric) != told + raw_rows + driver_rows:
            raise BenchmarkError("plugin_metrics does not hold the hub's rows plus the raw rows")

    ours, floor, driver_floor = samples / wall, raw_rows / raw_seconds, driver_rows / driver_seconds
    few_latencies, few_wall, few_cpu, few_batches = few
    ctx.log(f"  {dialect}: raw driver: {driver}")

    def ms(values: list[float], q: float) -> float:
        return percentile(values, q) * 1000

    return [
        clients,
        batches,
        samples,
        ours,
        ms(latencies, 0.5),
        ms(latencies, 0.99),
        ms(latencies, 1.0),
        floor,
        ours / floor,
        driver_floor,
        ours / driver_floor,
        told + raw_rows + driver_rows,
        hub_cpu / wall,
        own_cpu / wall,
        hub_cpu / batches * 1000,
        few_batches * BATCH / few_wall,
        ms(few_latencies, 0.99),
        few_cpu / few_batches * 1000,
    ]


async def _fastapi_anchor(ctx: Context, seconds: float) -> float:
    """Milliseconds of server CPU per POST of 100 points that FastAPI validates and
    drops, FEW clients posting back to back."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.ingest_anchors:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    plan = Plan(FEW, base=utcnow().replace(microsecond=0) - timedelta(days=1))
    ctx.log(f"  anchor: FastAPI POST of {BATCH} validated points, {FEW} clients")
    with tempfile.TemporaryDirectory(prefix="unity-bench-") as scratch:
        async with serving("", Path(scratch), command) as server, AsyncExitStack() as stack:
            team = []
            for index in range(FEW):
                http = httpx.AsyncClient(
                    base_url=server.url,
                    headers={"Content-Type": "application/json"},
                    timeout=REQUEST_TIMEOUT,
                    trust_env=False,
                )
                team.append(Client(index, await stack.enter_async_context(http), "/points"))
            _, _, cpu, batches = await _window(server, team, plan, seconds)
    return cpu / batches * 1000


async def run(ctx: Context) -> list[Table]:
    clients = 10 if ctx.quick else 50
    seconds = 5.0 if ctx.quick else 30.0
    size = len(json.dumps(json.loads(Plan(clients, utcnow()).body(0, 0))["samples"][0]))
    measured = {dialect: await _measure(ctx, dialect, clients, seconds) for dialect in ctx.dialects}
    anchor = await _fastapi_anchor(ctx, min(seconds, 10.0))
    rulebook, model = _rulebook_cpu(200 if ctx.quick else 1000)
    for values in measured.values():
        values += [anchor, values[-1] / anchor, rulebook, model, rulebook / model]
    table = Table(
        title=f"ingest: {clients} clients posting {BATCH}-sample batches ({size} B a sample) "
        f"to unity serve for {seconds:g} s vs raw Core bulk insert",
        columns=["measure", *measured, "unit"],
    )
    for index, (label, unit) in enumerate(MEASURES):
        table.rows.append([label, *(values[index] for values in measured.values()), unit])
    table.notes = [
        f"{seconds:g} s measured after a {WARMUP:g} s warm-up; one keep-alive connection "
        "and one plugin key per client; latency is one POST .../metrics, as the client saw it.",
        f"raw: the same rows into plugin_metrics with Core insert(), {CHUNK:,} per transaction, "
        "after the hub stopped; hub / raw = hub samples/s / raw rows/s.",
        f"raw driver: at most {RAW_DRIVER_ROWS:,} of the same rows with the bare driver, "
        f"{ROWS_PER_TRANSACTION} per transaction (SQLite: aiosqlite executemany, WAL, "
        "synchronous=FULL as the hub; PostgreSQL: asyncpg copy_records_to_table), "
        "rows built before the clock starts.",
        f"{FEW} clients: the first {FEW} clients alone for min(window, 10 s) after a warm-up. "
        "FastAPI anchor: uvicorn serving one FastAPI route that validates the same bodies "
        "(pydantic) and stores nothing, the same clients and window; "
        "measured once, shown in every column.",
        "rulebook: the CPU of accept_batch_json (the hub's whole check of a batch against "
        "the plugin's metadata) on one body in this process, best of five rounds; anchor "
        "model: Points.model_validate_json of the same body (the FastAPI anchor's pydantic "
        "model, no rules); measured once, shown in every column.",
        "CPU in cores (1.0 = one core busy): the hub process, and this process "
        "(the clients and their JSON); both share this machine's cores.",
        "Checked: every answer 200 with all samples stored; the database holds exactly that; "
        "the hub logged no errors.",
    ]
    return [table]
