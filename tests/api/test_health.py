"""``GET /api/plugins/v2/{id}/health``: run the check now, or read the last answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from tests.api.helpers import API, error_locs, error_of, plugin_row


async def test_the_check_runs_and_is_persisted(app: FastAPI, client: httpx.AsyncClient) -> None:
    put = await client.put(f"{API}/configured/config", json={"url": "http://a", "mode": "slow"})
    assert put.status_code == 200
    before = datetime.now(UTC)
    response = await client.get(f"{API}/configured/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "degraded"
    assert health["message"] == "running in slow mode"
    checked_at = datetime.fromisoformat(health["checked_at"])
    assert before - timedelta(seconds=1) <= checked_at <= datetime.now(UTC)
    cached = (await client.get(f"{API}/configured/health", params={"cached": "true"})).json()
    assert cached == health
    assert (await client.get(f"{API}/configured")).json()["health"] == health
    row = await plugin_row(app, "configured")
    assert (row.health_status, row.health_message) == ("degraded", "running in slow mode")


async def test_a_new_check_replaces_the_last(client: httpx.AsyncClient) -> None:
    await client.put(f"{API}/configured/config", json={"url": "http://a", "mode": "slow"})
    assert (await client.get(f"{API}/configured/health")).json()["status"] == "degraded"
    await client.put(f"{API}/configured/config", json={"url": "http://a", "mode": "fast"})
    cached = (await client.get(f"{API}/configured/health", params={"cached": "true"})).json()
    assert cached["status"] == "degraded"
    fresh = (await client.get(f"{API}/configured/health")).json()
    assert (fresh["status"], fresh["message"]) == ("healthy", "ok")
    cached = (await client.get(f"{API}/configured/health", params={"cached": "true"})).json()
    assert cached == fresh


async def test_cached_before_any_check_is_unknown(client: httpx.AsyncClient) -> None:
    cached = (await client.get(f"{API}/counter/health", params={"cached": "true"})).json()
    assert cached == {"status": "unknown", "message": "", "checked_at": None}
    fresh = (await client.get(f"{API}/counter/health")).json()
    assert fresh["status"] == "healthy"
    assert fresh["checked_at"] is not None


async def test_health_of_a_failing_collector_is_its_own_check(client: httpx.AsyncClient) -> None:
    # The health check is the plugin's answer, not the outcome of its runs.
    await client.post(f"{API}/failing/execute")
    assert (await client.get(f"{API}/failing/health")).json()["status"] == "healthy"


async def test_health_errors(client: httpx.AsyncClient) -> None:
    error_of(await client.get(f"{API}/nope/health"), 404)
    error_of(await client.get(f"{API}/nope/health", params={"cached": "true"}), 404)
    assert error_locs(await client.get(f"{API}/counter/health", params={"cached": "often"})) == {
        ("query", "cached")
    }
