"""idle: a real ``unity serve`` with the four local plugins; memory when idle, time to ready.

The hub runs as its own process, started through the ``unity`` console script
of this environment exactly as an operator starts it, on SQLite in a scratch
data folder, with the four default plugins (``system-info``, ``disk-monitor``,
``network-monitor``, ``process-monitor``) enabled on the first start and no
scheduler jitter, so each runs as soon as the hub starts (every start must
record a successful run of each, or the benchmark fails). The
first start creates and migrates the database; it is reported apart. Every
further start finds the schema current, as a restarted hub does: from process
start to the first ``/readyz`` 200, then resident memory 10 s later.

The hub's own packages (``unity``, ``unity_sdk``, ``unity_catalogue``) are
byte-compiled first, as ``pip`` does when it installs a wheel: the anchor's
libraries were compiled at their install, and an editable checkout run with
``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module of the hub
from source on every start.

The anchor, measured in the same run, is ``python -c "import fastapi,
sqlalchemy, pydantic, uvicorn"``: the libraries any hub of this shape has to
load, and nothing else. Its wall time is process start to exit; its memory is
its resident set after the imports.
"""

from __future__ import annotations

import asyncio
import compileall
import http.client
import importlib.util
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchmarkError, Context, Table

NAME = "idle"
SUMMARY = "idle `unity serve` with the four local plugins: RSS after 10 s and start-to-ready"

LOCAL_PLUGINS = ["system-info", "disk-monitor", "network-monitor", "process-monitor"]
HUB_PACKAGES = ["unity", "unity_sdk", "unity_catalogue"]
SETTLE_SECONDS = 10.0
READY_TIMEOUT = 60.0
ANCHOR_IMPORTS = "fastapi, sqlalchemy, pydantic, uvicorn"
# Prints the resident set (KiB) of the anchor process once its imports are done,
# then the CPU time (s) it has used since it started.
_ANCHOR = (
    f"import {ANCHOR_IMPORTS}\n"
    "import os\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmRSS:'):\n"
    "        print(line.split()[1])\n"
    "print(sum(os.times()[:2]))\n"
)


def compile_hub() -> None:
    """Byte-compile the hub's packages where they are installed, as ``pip install`` does."""
    for name in HUB_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise BenchmarkError(f"package {name} is not installed in this environment")
        for folder in spec.submodule_search_locations:
            if not compileall.compile_dir(folder, quiet=1):
                raise BenchmarkError(f"{folder} does not byte-compile")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"no VmRSS for pid {pid}")


def _cpu_s(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads) since it started."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _unity_command() -> list[str]:
    script = Path(sys.executable).with_name("unity")
    if not script.exists():
        raise BenchmarkError(f"{script} is missing: install the hub into this environment")
    return [str(script), "serve"]


def _hub_environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNITY_")}
    env.update(
        UNITY_DATA_DIR=str(data_dir),
        UNITY_HOST="127.0.0.1",
        UNITY_PORT=str(port),
        UNITY_AUTOENABLE='["' + '", "'.join(LOCAL_PLUGINS) + '"]',
        UNITY_LOG_LEVEL="WARNING",
        # Every plugin runs right at start, so the memory read is of a hub that has
        # collected once, not of one still waiting for its first runs.
        UNITY_SCHEDULER_JITTER="0",
    )
    return env


def serve_once(data_dir: Path, settle: float) -> dict[str, float]:
    """Start the hub, time it to ready, read its memory ``settle`` s later, stop it."""
    port = _free_port()
    log = (data_dir / "hub.log").open("ab")
    started = time.perf_counter()
    hub = subprocess.Popen(
        _unity_command(), env=_hub_environment(data_dir, port), stdout=log, stderr=log
    )
    try:
        while not _ready(port):
            if hub.poll() is not None:
                raise BenchmarkError(f"the hub exited with {hub.returncode}; see {log.name}")
            if time.perf_counter() - started > READY_TIMEOUT:
                raise BenchmarkError(f"the hub was not ready within {READY_TIMEOUT:g} s")
            time.sleep(0.01)
        ready = time.perf_counter() - started
        cpu = _cpu_s(hub.pid)
        time.sleep(settle)
        result = {
            "ready_s": ready,
            "ready_cpu_s": cpu,
            "rss_mib": _rss_mib(hub.pid),
            "threads": _threads(hub.pid),
        }
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        log.close()
    return result


def anchor_once() -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _ANCHOR], capture_output=True, text=True, check=True
    )
    rss_kib, cpu_s = done.stdout.split()
    return {
        "wall_s": time.perf_counter() - started,
        "rss_mib": int(rss_kib) / 1024,
        "cpu_s": float(cpu_s),
    }


def plugin_runs(data_dir: Path) -> dict[str, int]:
    """Successful runs per local plugin, read from the hub's database after it stopped."""
    with sqlite3.connect(f"file:{data_dir / 'unity.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT plugin_id, count(*) FROM plugin_executions "
            "WHERE status = 'success' GROUP BY plugin_id"
        ).fetchall()
    return dict(rows)


def measure(starts: int, settle: float) -> dict[str, Any]:
    """The hub's first start, ``starts`` restarts and as many anchor runs, interleaved."""
    compile_hub()
    with tempfile.TemporaryDirectory(prefix="unity-bench-idle-") as scratch:
        data_dir = Path(scratch)
        first = serve_once(data_dir, settle=0.5)
        hubs, anchors = [], []
        for _ in range(starts):
            anchors.append(anchor_once())
            hubs.append(serve_once(data_dir, settle))
        runs = plugin_runs(data_dir)
    missing = [plugin for plugin in LOCAL_PLUGINS if runs.get(plugin, 0) < starts + 1]
    if missing:
        raise BenchmarkError(f"plugins that did not run on every start: {missing} ({runs})")
    return {"first": first, "hubs": hubs, "anchors": anchors, "runs": runs}


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


async def run(ctx: Context) -> list[Table]:
    starts = 1 if ctx.quick else 3
    settle = 2.0 if ctx.quick else SETTLE_SECONDS
    ctx.log(f"idle: {starts} start(s) of `unity serve`, {settle:g} s idle each")
    found = await asyncio.to_thread(measure, starts, settle)
    hub_rss, hub_ready = _median(found["hubs"], "rss_mib"), _median(found["hubs"], "ready_s")
    anchor_rss, anchor_wall = (
        _median(found["anchors"], "rss_mib"),
        _median(found["anchors"], "wall_s"),
    )
    table = Table(
        f"idle: `unity serve` with the four local plugins (SQLite; median of {starts})",
        ["measure", "hub", f"anchor: import {ANCHOR_IMPORTS}", "hub / anchor", "goal"],
        [
            [
                f"resident memory after {settle:g} s idle (MiB)",
                hub_rss,
                anchor_rss,
                hub_rss / anchor_rss,
                "≤ 1.5",
            ],
            [
                "process start to /readyz 200 (s)",
                hub_ready,
                anchor_wall,
                hub_ready / anchor_wall,
                "≤ 2",
            ],
            [
                "CPU time, process start to /readyz 200 (s)",
                _median(found["hubs"], "ready_cpu_s"),
                _median(found["anchors"], "cpu_s"),
                _median(found["hubs"], "ready_cpu_s") / _median(found["anchors"], "cpu_s"),
                "",
            ],
            ["first start: migrate, then ready (s)", found["first"]["ready_s"], None, None, ""],
            ["hub threads", _median(found["hubs"], "threads"), None, None, ""],
        ],
        notes=[
            "anchor: the same Python in a subprocess; wall time is process start to exit",
            "CPU time (all threads, user + system) varies less than wall time on a busy machine",
            f"successful runs recorded: {found['runs']}",
        ],
    )
    return [table]
