"""End to end: three `unity serve` processes on one PostgreSQL database.

Each hub has its own port, data dir and hub id; they share the database and
the master key (``UNITY_MASTER_KEY``) and start together on an empty database.
Plugins enabled through one hub run on the others' schedules too, and every
scheduled run happens exactly once: counted per slot of the plugin's
schedule, no slot runs twice and none is missed. When the hub running the
plugins is SIGKILLed, another takes them over within one interval after its
lease expires; a plugin disabled through one hub stops on the hub that was
running it; retention runs once per pass, not once per hub.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support.processes import TOKEN_RE, Hub, hub_env, wait_until

from unity.plugins.leases import LEASE_SLACK_SECONDS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

PLUGINS = ("system-info", "disk-monitor", "network-monitor")
INTERVAL = 2.0
JITTER = 0.1
SYNC_SECONDS = 1.0
RETENTION_SECONDS = 2.0
STEADY_SECONDS = 16.0
PASS_LINE = re.compile(
    r"^(\S+ \S+) INFO\s+unity\.retention: retention pass on hub (\S+) removed", re.MULTILINE
)


def _sql(url: str, statement: str, **params: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def shared_database(postgres_server_url: str) -> Iterator[str]:
    """A database of its own: three hubs migrate and fill it from empty."""
    name = f"unity_hubs_{uuid.uuid4().hex[:8]}"
    _sql(postgres_server_url, f'CREATE DATABASE "{name}"')
    yield f"{postgres_server_url.rsplit('/', 1)[0]}/{name}"
    _sql(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _runs(url: str, plugin_id: str, *, after: datetime | None = None) -> list[datetime]:
    """Start times of the plugin's scheduled runs, oldest first."""
    rows = _sql(
        url,
        "SELECT started_at FROM plugin_executions WHERE plugin_id = :plugin "
        "AND trigger = 'schedule' AND started_at > :after ORDER BY started_at",
        plugin=plugin_id,
        after=after or datetime(2000, 1, 1, tzinfo=UTC),
    )
    return [row[0] for row in rows]


def _holders(url: str) -> dict[str, str]:
    rows = _sql(url, "SELECT name, holder FROM hub_leases WHERE expires_at > now()")
    return {row.name: row.holder for row in rows}


def _gaps(times: list[datetime]) -> list[float]:
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


def _once_per_slot(times: list[datetime], what: str) -> None:
    """Exactly one run in each slot of the plugin's grid (one interval wide, from the
    first run): a slot run twice repeats a slot number, a slot missed skips one."""
    assert times, f"{what}: no runs"
    slots = [round((t - times[0]).total_seconds() / INTERVAL) for t in times]
    assert slots == list(range(len(times))), f"{what}: runs per slot {slots}, gaps {_gaps(times)}"


def _client(hub: Hub, token: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _retention_passes(hubs: dict[str, Hub]) -> list[tuple[datetime, str]]:
    passes = []
    for hub in hubs.values():
        for stamp, holder in PASS_LINE.findall(hub.log.read_text()):
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").astimezone(UTC)
            passes.append((at, holder))
    return sorted(passes)


@pytest.mark.timeout(300)
def test_three_hubs_run_each_scheduled_run_once(tmp_path: Path, shared_database: str) -> None:
    master_key = base64.b64encode(os.urandom(32)).decode()
    hubs = {
        name: Hub(
            hub_env(
                tmp_path / name,
                shared_database,
                hub_id=f"hub-{name}",
                master_key=master_key,
                hub_sync_seconds=str(SYNC_SECONDS),
                retention_check_seconds=str(RETENTION_SECONDS),
                scheduler_jitter=str(JITTER),
            ),
            tmp_path / f"{name}.log",
        )
        for name in ("a", "b", "c")
    }
    try:
        started = datetime.now(UTC)
        # All at once on an empty database: they migrate one after the other.
        with ThreadPoolExecutor(len(hubs)) as pool:
            list(pool.map(Hub.start, hubs.values()))
        # Each hub that found no admin token at its start printed one; any will do.
        token = TOKEN_RE.findall("".join(h.log.read_text() for h in hubs.values()))[0]
        with _client(hubs["a"], token) as admin:
            for plugin_id in PLUGINS:
                put = admin.put(f"/api/plugins/v2/{plugin_id}/config", json={"interval": INTERVAL})
                assert put.is_success, put.text
                assert admin.post(f"/api/plugins/v2/{plugin_id}/enable").is_success
        enabled = datetime.now(UTC)
        # B and C follow within a sync pass: their timers fire too, and lose the claim.
        for name in ("b", "c"):
            wait_until(
                lambda name=name: (
                    hubs[name].log.read_text().count("enabled through another hub") == len(PLUGINS)
                ),
                timeout=10,
            )

        # 1. Steady state: each plugin once per interval across the three hubs.
        time.sleep(STEADY_SECONDS)
        steady_end = datetime.now(UTC)
        for plugin_id in PLUGINS:
            runs = [t for t in _runs(shared_database, plugin_id) if t <= steady_end]
            _once_per_slot(runs, plugin_id)
            expected = (steady_end - enabled).total_seconds() / INTERVAL
            assert expected - 2 <= len(runs) <= expected + 1, (plugin_id, len(runs), expected)
        holders = _holders(shared_database)
        assert {holders[f"plugin:{p}"] for p in PLUGINS} <= {"hub-a", "hub-b", "hub-c"}

        # 2. SIGKILL the hub running most plugins: the others take them over.
        counts = {h: list(holders.values()).count(h) for h in set(holders.values())}
        victim = max(counts, key=lambda h: counts[h]).removeprefix("hub-")
        survivors = [name for name in hubs if name != victim]
        hubs[victim].kill()
        killed = datetime.now(UTC)
        # The lease covers the victim's next run plus the slack; then a survivor's
        # next timer (within one interval) takes the plugin.
        takeover = INTERVAL * (1 + JITTER) + LEASE_SLACK_SECONDS + INTERVAL
        time.sleep(takeover + 4 * INTERVAL)
        after_kill = datetime.now(UTC)
        holders = _holders(shared_database)
        for plugin_id in PLUGINS:
            runs = _runs(shared_database, plugin_id, after=killed - timedelta(seconds=INTERVAL * 2))
            before = [t for t in runs if t <= killed]
            later = [t for t in runs if t > killed]
            assert before, plugin_id
            assert len(later) >= 4, f"{plugin_id} stopped with hub {victim}: {later}"
            gap = (later[0] - before[-1]).total_seconds()
            assert gap <= takeover + 1.0, f"{plugin_id}: taken over after {gap:.1f} s"
            _once_per_slot(later, f"{plugin_id} after the kill")
            assert holders[f"plugin:{plugin_id}"] in {f"hub-{s}" for s in survivors}

        # 3. Disabled through one survivor, the plugin stops on the other one running it.
        plugin_id = PLUGINS[0]
        runner = holders[f"plugin:{plugin_id}"].removeprefix("hub-")
        other = next(name for name in survivors if name != runner)
        with _client(hubs[other], token) as admin:
            assert admin.post(f"/api/plugins/v2/{plugin_id}/disable").is_success
        disabled = datetime.now(UTC)
        time.sleep(SYNC_SECONDS + 3 * INTERVAL)
        settled = disabled + timedelta(seconds=SYNC_SECONDS + 1)
        late = _runs(shared_database, plugin_id, after=settled)
        assert late == [], f"{plugin_id} still ran on hub {runner} after it was disabled: {late}"
        assert f"plugin {plugin_id} disabled through another hub" in hubs[runner].log.read_text()
        for still in PLUGINS[1:]:
            assert _runs(shared_database, still, after=disabled + timedelta(seconds=2))
        finished = datetime.now(UTC)

        # 4. Retention: one pass per period in all, from one hub until it was killed.
        passes = _retention_passes(hubs)
        assert passes, "no retention pass ran"
        elapsed = (finished - started).total_seconds()
        assert len(passes) <= elapsed / RETENTION_SECONDS + 2, (len(passes), elapsed, passes)
        assert len(passes) >= elapsed / RETENTION_SECONDS / 2, (len(passes), elapsed)
        before_kill = {holder for at, holder in passes if at < killed}
        assert len(before_kill) == 1, passes
        # Log times are whole seconds: passes a period apart are at least a second apart.
        assert min(_gaps([at for at, _ in passes])) >= 1.0, passes
        assert after_kill < finished

        # 5. A hub that stops cleanly hands its leases over at once.
        for name in survivors:
            hubs[name].stop()
        assert _holders(shared_database) == {}
    finally:
        for hub in hubs.values():
            if hub.proc is not None:
                hub.kill()
    for hub in hubs.values():
        assert "Traceback" not in hub.log.read_text(), hub.log.read_text()
