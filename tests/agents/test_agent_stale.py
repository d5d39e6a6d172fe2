"""A plugin instance of an agent that stops reporting turns stale and fires the external
plugins' "agent stale" rule; its catalogue plugin's default rules apply to it too --
also to an agent that joined after the alert engine compiled its rules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agents.support import API, auth, joined, sample
from tests.support.alerting import prompt_settings
from unity.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return prompt_settings(tmp_path, database_url)


async def _wait(what: str, check: Callable[[], Any], seconds: float) -> Any:
    started = time.monotonic()
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() - started < seconds, f"no {what} within {seconds:g} s"
        await asyncio.sleep(0.2)


def _batch(batch_id: str, memory: float) -> dict[str, Any]:
    document = {"cpu": {"percent": 5.0}, "memory": {"percent": memory}}
    return {"batch_id": batch_id, "samples": [sample("pi.lan", document)]}


async def test_an_instance_that_stops_reporting_is_stale_and_alerts(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    rules = (await client.get("/api/alerts/rules", params={"plugin_id": "system-info@nas"})).json()
    assert {r["rule"]["id"] for r in rules["items"]} == {"memory-high", "agent-stale"}
    # The catalogue's rule applies to the instance (made quick to fire for the test).
    changed = await client.put(
        "/api/alerts/rules/system-info@nas/memory-high/override",
        json={"changes": {"for_seconds": 0}},
    )
    assert changed.status_code == 200, changed.text
    first = await anon.post(
        f"{API}/system-info@nas/metrics", json=_batch("batch-nas-1", 95), headers=auth(nas)
    )
    assert first.status_code == 200, first.text
    assert (await client.get(f"{API}/system-info@nas")).json()["state"] == "healthy"
    await _wait("memory alert", lambda: _has(client, ("system-info@nas", "memory-high", "nas")), 10)

    # A second agent joins after the alert engine compiled its rules.
    pi = await joined(client, anon, "pi")
    assert (
        await client.put(f"{API}/system-info@pi/config", json={"interval": 1})
    ).status_code == 200
    sent = await anon.post(
        f"{API}/system-info@pi/metrics", json=_batch("batch-pi-1", 10), headers=auth(pi)
    )
    assert sent.status_code == 200, sent.text

    # Silence from the agent: three missed 1-second intervals make it stale.
    async def stale() -> bool:
        detail = (await client.get(f"{API}/system-info@pi")).json()
        return bool(detail["state"] == "stale")

    await _wait("stale state", stale, 15)
    await _wait("stale alert", lambda: _has(client, ("system-info@pi", "agent-stale", "pi")), 15)
    # The other agent's instance (30 s interval by default) is not stale.
    assert (await client.get(f"{API}/system-info@nas")).json()["state"] == "healthy"

    # Reporting again: healthy, the stale alert resolves.
    back = await anon.post(
        f"{API}/system-info@pi/metrics", json=_batch("batch-pi-2", 10), headers=auth(pi)
    )
    assert back.status_code == 200, back.text
    assert (await client.get(f"{API}/system-info@pi")).json()["state"] == "healthy"

    async def resolved() -> bool:
        return not await _has(client, ("system-info@pi", "agent-stale", "pi"))

    await _wait("resolved stale alert", resolved, 15)


async def _firing(client: httpx.AsyncClient) -> set[tuple[str, str, str]]:
    items = (await client.get("/api/alerts")).json()["items"]
    return {(a["plugin_id"], a["rule_id"], a["host"]) for a in items if a["state"] == "firing"}


async def _has(client: httpx.AsyncClient, wanted: tuple[str, str, str]) -> bool:
    return wanted in await _firing(client)


async def test_an_instance_its_agent_cannot_run_fails_and_is_not_stale(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """The agent says what it cannot run (a missing extra) and spaces failing runs
    out, as the hub does its own: the instance fails with the agent's reason; the
    silence that follows is not staleness (its host would turn stale, though, if
    the agent itself went quiet)."""
    nas = await joined(client, anon, "nas")
    added = await client.post("/api/hosts/nas/plugins", json={"plugin": "redis", "interval": 1})
    assert added.status_code == 201, added.text
    reason = "missing dependency: install unity-catalogue[redis]"
    failed = await anon.post(
        f"{API}/redis@nas/health",
        json={"status": "unhealthy", "message": "collection failed: no module named 'redis'"},
        headers=auth(nas),
    )
    assert failed.status_code == 200, failed.text
    status = {
        "platform": {"hostname": "nas.lan"},
        "started_at": "2026-12-01T00:00:00Z",
        "problems": {"redis@nas": reason, "redis@pi": "not this host's"},
    }
    assert (await anon.post("/api/agents/v1/status", json=status, headers=auth(nas))).is_success
    await asyncio.sleep(3.5)  # more than three missed 1-second intervals
    detail = (await client.get(f"{API}/redis@nas")).json()
    assert detail["state"] == "failing"
    assert detail["last_error"] == reason
    assert not await _has(client, ("redis@nas", "agent-stale", "nas"))
