"""End to end: an external plugin that stops reporting turns stale and fires the
hub's "agent stale" rule, told to a webhook on loopback; reporting again resolves it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.external.test_hub_side import NAS_METADATA, _auth, _enroll, _register
from tests.notify.receivers import http_receiver
from tests.support.alerting import prompt_settings

from unity.settings import Settings

METRICS = "/api/plugins/v2/nas-temp/metrics"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return prompt_settings(tmp_path, database_url)


def _batch(number: int) -> dict[str, Any]:
    sample = {"host": "nas", "timestamp": datetime.now(UTC).isoformat(), "data": {"celsius": 41}}
    return {"batch_id": f"batch-{number:04d}", "samples": [sample]}


async def _wait(what: str, check: Any, seconds: float) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"no {what} within {seconds:g} s"
        await asyncio.sleep(0.2)


async def test_an_agent_that_stops_reporting_fires_stale_and_resolves_on_return(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    metadata = {**NAS_METADATA, "default_interval": 1}
    registered = await _register(anon, await _enroll(client), metadata)
    assert registered.status_code == 201, registered.text
    key = registered.json()["api_key"]
    with http_receiver() as web:
        url = f"json://127.0.0.1:{web.port}/hook"
        added = await client.post("/api/alerts/channels", json={"name": "hook", "url": url})
        assert added.status_code == 201, added.text
        sent = await anon.post(
            "/api/plugins/v2/nas-temp/metrics", json=_batch(1), headers=_auth(key)
        )
        assert sent.status_code == 200, sent.text

        # Silence from the agent: three missed 1-second intervals, then the tick sees it.
        await _wait("stale notice", lambda: web.requests, 15)
        told = web.requests[0].json()
        assert "nas-temp on nas stopped reporting" in told["message"], told
        detail = (await client.get("/api/plugins/v2/nas-temp")).json()
        assert detail["state"] == "stale"
        firing = (await client.get("/api/alerts")).json()["items"]
        assert [(a["rule_id"], a["state"]) for a in firing] == [("agent-stale", "firing")]

        # The agent is back: the alert resolves and the webhook hears it.
        sent = await anon.post(
            "/api/plugins/v2/nas-temp/metrics", json=_batch(2), headers=_auth(key)
        )
        assert sent.status_code == 200, sent.text
        await _wait("resolved notice", lambda: len(web.requests) >= 2, 10)
        assert "resolved" in web.requests[1].json()["title"].lower(), web.requests[1].json()
