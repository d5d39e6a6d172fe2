"""The hub scans its own machine (``UNITY_DISCOVERY_SECONDS``): the real app over
ASGI with the whole catalogue loaded, on SQLite and PostgreSQL.

The services found are the real ones on this machine: PostgreSQL (5432),
MariaDB (3306), Redis (6379) and Mosquitto (1883). One that is down skips
its part with the reason, except under CI, where it fails. Accepting the Redis
proposal makes the hub's own ``redis`` plugin collect from the real server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select
from tests.support.hosts import add_agent_host, add_proposal

from unity.plugins.hub_discovery import HubDiscovery
from unity.settings import Settings
from unity.storage.models import DiscoveryProposal
from unity_catalogue import BUILTIN_PLUGINS
from unity_sdk import HostFacts, MetricField, PluginBase, PluginMetadata, Proposal

HUB = "test-host"
SCAN_SECONDS = 0.5
# service: (port, plugin, the config field taking a credential)
SERVICES = {
    "PostgreSQL": (5432, "postgres", "password"),
    "MariaDB": (3306, "mysql", "password"),
    "Redis": (6379, "redis", None),
    "Mosquitto": (1883, "mqtt-broker", None),
}


class EchoPlugin(PluginBase):
    """A plugin from outside the catalogue: its ``discover`` takes part too. It
    proposes itself for a socket listening on one of ``PORTS``."""

    PORTS: tuple[int, ...] = ()

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="echo",
            name="Echo",
            version="1.0.0",
            metrics=[MetricField(name="up")],
            config_schema={
                "type": "object",
                "properties": {"port": {"type": "integer"}},
                "additionalProperties": False,
            },
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        return [
            Proposal(key=f"echo:{s.port}", plugin="echo", title="Echo", config={"port": s.port})
            for s in facts.listening(ports=cls.PORTS)
        ]

    async def collect_data(self) -> dict[str, Any]:
        return {"up": 1}


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [*BUILTIN_PLUGINS, EchoPlugin]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"discovery_seconds": SCAN_SECONDS})


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI requires it: {reason}")
    pytest.skip(reason)


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        await asyncio.sleep(0.1)


async def proposals(client: httpx.AsyncClient, status: str | None = None) -> dict[str, Any]:
    params = {"status": status} if status else {}
    answer = await client.get(f"/api/hosts/{HUB}/proposals", params=params)
    assert answer.status_code == 200, answer.text
    return {p["key"]: p for p in answer.json()}


async def scanned(app: FastAPI, times: int = 1) -> None:
    """Wait for ``times`` more scans stored after now."""
    discovery: HubDiscovery = app.state.discovery
    target = discovery.scans + times

    async def done() -> bool:
        return discovery.scans >= target

    await eventually(done)


async def test_the_hub_proposes_the_services_running_on_its_machine(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    down = [name for name, (port, _, _) in SERVICES.items() if not listening(port)]
    await scanned(app)
    found = await proposals(client, "open")
    for name, (port, plugin, credential) in SERVICES.items():
        if name in down:
            continue
        key = f"{plugin}:{port}"
        assert key in found, f"{name} runs here but was not proposed: {sorted(found)}"
        proposal = found[key]
        assert proposal["plugin"] == plugin
        assert proposal["config"] == {"host": "127.0.0.1", "port": port}
        assert proposal["credential"] == credential
        assert str(port) in proposal["title"]
        assert proposal["plugin_id"] is None
    if down:
        unavailable(f"not running on this machine, not checked: {', '.join(down)}")


async def test_accepting_redis_on_the_hub_host_collects_real_metrics_within_an_interval(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    if not listening(6379):
        unavailable("Redis is not running on 127.0.0.1:6379")
    found = await eventually(_has(client, "redis:6379"))
    interval = 2
    started = time.monotonic()
    accepted = await client.post(
        f"/api/hosts/{HUB}/proposals/{found['redis:6379']['id']}/accept",
        json={"config": {"interval": interval}},
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {"plugin_id": "redis"}

    async def stored() -> list[dict[str, Any]]:
        answer = await client.get("/api/plugins/v2/redis/metrics")
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    # One interval, plus room for a busy two-core test machine.
    samples = await eventually(stored, timeout=interval + 3)
    assert time.monotonic() - started < interval + 3
    async with Redis(host="127.0.0.1", port=6379) as redis:
        version = (await redis.info("server"))["redis_version"]
    data = samples[0]["data"]
    assert data["reachable"] == 1
    assert data["version"] == version
    plugin = (await client.get("/api/plugins/v2/redis")).json()
    assert plugin["enabled"] is True
    after = await proposals(client)
    assert after["redis:6379"]["status"] == "accepted"
    await scanned(app)
    again = await proposals(client)
    assert again["redis:6379"]["status"] == "accepted", "a later scan keeps it accepted"
    assert "redis:6379" not in await proposals(client, "open")


async def test_a_dismissed_proposal_stays_dismissed_after_the_next_scan(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        EchoPlugin.PORTS = (port,)
        try:
            found = await eventually(_has(client, f"echo:{port}"))
            proposal = found[f"echo:{port}"]
            dismissed = await client.post(f"/api/hosts/{HUB}/proposals/{proposal['id']}/dismiss")
            assert dismissed.status_code == 200, dismissed.text
            await scanned(app, 2)
            after = (await proposals(client))[f"echo:{port}"]
            assert after["status"] == "dismissed"
            assert after["last_seen_at"] > proposal["last_seen_at"], "seen by the later scans"
            assert f"echo:{port}" not in await proposals(client, "open")
        finally:
            EchoPlugin.PORTS = ()
    # The socket closed: an open proposal would be gone; the dismissed one stays so.
    await scanned(app)
    assert (await proposals(client))[f"echo:{port}"]["status"] == "dismissed"


def _has(client: httpx.AsyncClient, key: str) -> Callable[[], Any]:
    async def check() -> dict[str, Any] | None:
        found = await proposals(client, "open")
        return found if key in found else None

    return check


async def test_a_proposal_no_longer_seen_is_gone(app: FastAPI, client: httpx.AsyncClient) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        EchoPlugin.PORTS = (port,)
        try:
            await eventually(_has(client, f"echo:{port}"))
        finally:
            EchoPlugin.PORTS = ()

    async def gone() -> bool:
        return (await proposals(client))[f"echo:{port}"]["status"] == "gone"

    await eventually(gone)


async def test_the_hub_never_writes_proposals_on_an_agents_host(
    app: FastAPI, settings: Settings
) -> None:
    await add_agent_host(app.state.db, "nas")
    kept = await add_proposal(app.state.db, "nas", "postgres:5432", "postgres")
    wrong = HubDiscovery(app.state.manager, settings.model_copy(update={"host_id": "nas"}))
    assert await wrong.scan_once() is None
    async with app.state.db.session() as session:
        rows = (
            await session.scalars(
                select(DiscoveryProposal).where(DiscoveryProposal.host_id == "nas")
            )
        ).all()
    assert [(r.id, r.key, r.status) for r in rows] == [(kept, "postgres:5432", "open")]


async def test_two_hubs_with_one_host_id_write_the_same_rows(
    app: FastAPI, settings: Settings
) -> None:
    first = HubDiscovery(app.state.manager, settings)
    second = HubDiscovery(app.state.manager, settings)
    counts = await asyncio.gather(first.scan_once(), second.scan_once(), first.scan_once())
    assert counts[0] is not None
    assert len(set(counts)) == 1
    async with app.state.db.session() as session:
        total = await session.scalar(
            select(func.count())
            .select_from(DiscoveryProposal)
            .where(DiscoveryProposal.host_id == HUB)
        )
        keys = await session.scalar(
            select(func.count(func.distinct(DiscoveryProposal.key))).where(
                DiscoveryProposal.host_id == HUB
            )
        )
    assert total == keys, "one row per key"
