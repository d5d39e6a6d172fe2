"""An external plugin cannot stall the hub with a huge health report or metric list."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from unity_sdk import MAX_HEALTH_DETAILS_BYTES
from unity_sdk.metadata import MAX_METRICS

API = "/api/plugins/v2"


async def _register(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, metrics: list[dict[str, Any]]
) -> httpx.Response:
    enrollment = await client.post("/api/enrollment-tokens", json={})
    assert enrollment.status_code == 201, enrollment.text
    metadata = {"id": "probe", "name": "Probe", "version": "1.0.0", "metrics": metrics}
    return await anon.post(
        f"{API}/register",
        json={"metadata": metadata, "hostname": "nas"},
        headers={"Authorization": f"Bearer {enrollment.json()['token']}"},
    )


async def test_health_details_over_the_limit_are_refused(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    registered = await _register(client, anon, [{"name": "value"}])
    assert registered.status_code == 201, registered.text
    headers = {"Authorization": f"Bearer {registered.json()['api_key']}"}
    url = f"{API}/probe/health"
    huge = {"status": "healthy", "details": {"blob": "x" * 20_000_000}}
    response = await anon.post(url, json=huge, headers=headers)
    assert response.status_code == 413, response.text
    assert "bytes" in response.json()["error"]["message"]
    over = {"status": "healthy", "details": {"blob": "x" * MAX_HEALTH_DETAILS_BYTES}}
    response = await anon.post(url, json=over, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["details"]
    detail = (await client.get(f"{API}/probe")).json()
    assert detail["health_details"] in (None, {})
    fine = {"status": "degraded", "message": "warm", "details": {"celsius": 71}}
    assert (await anon.post(url, json=fine, headers=headers)).status_code == 200
    detail = (await client.get(f"{API}/probe")).json()
    assert detail["health_details"] == {"celsius": 71, "buffered": 0, "dropped": 0}


async def test_twenty_thousand_metrics_are_refused_and_the_hub_keeps_serving(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    metrics = [{"name": f"m{i}"} for i in range(20_000)]
    slowest = 0.0
    done = asyncio.Event()

    async def poll() -> None:
        nonlocal slowest
        while not done.is_set():
            start = time.monotonic()
            assert (await anon.get("/healthz")).status_code == 200
            slowest = max(slowest, time.monotonic() - start)
            await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll())
    try:
        response = await _register(client, anon, metrics)
    finally:
        done.set()
        await poller
    assert response.status_code == 422, response.text
    assert f"at most {MAX_METRICS}" in response.json()["error"]["message"]
    assert slowest < 1
    assert (await client.get(f"{API}/probe")).status_code == 404
    allowed = await _register(client, anon, metrics[:MAX_METRICS])
    assert allowed.status_code == 201, allowed.text
