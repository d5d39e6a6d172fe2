"""External plugins feed the same observers and state events as in-hub plugins."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from tests.external.test_hub_side import NAS_METADATA, _auth, _batch, _enroll, _register

from unity.plugins.observe import RunObserved, StateChanged
from unity.storage.models import PluginEvent
from unity_sdk import PluginState, RunStatus


async def test_batches_and_health_reports_are_observed_and_change_state(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    seen: list[RunObserved | StateChanged] = []

    async def observe(event: RunObserved | StateChanged) -> None:
        seen.append(event)

    app.state.manager.recorder.observers.append(observe)
    registered = await _register(anon, await _enroll(client))
    assert registered.status_code == 201, registered.text
    key = registered.json()["api_key"]
    assert (await client.post("/api/plugins/v2/nas-temp/enable")).status_code == 200
    sent = await anon.post(
        "/api/plugins/v2/nas-temp/metrics", json=_batch("batch-0001", n=2), headers=_auth(key)
    )
    assert sent.status_code == 200, sent.text
    report = {"status": "unhealthy", "message": "sensor lost"}
    answer = await anon.post("/api/plugins/v2/nas-temp/health", json=report, headers=_auth(key))
    assert answer.status_code == 200, answer.text

    run = next(e for e in seen if isinstance(e, RunObserved))
    assert (run.plugin_id, run.status, run.external) == ("nas-temp", RunStatus.SUCCESS, True)
    assert [data["celsius"] for _, data in run.documents] == [40, 41]
    changes = [(e.previous, e.current) for e in seen if isinstance(e, StateChanged)]
    assert changes == [
        (PluginState.UNKNOWN, PluginState.HEALTHY),
        (PluginState.HEALTHY, PluginState.UNHEALTHY),
    ]
    async with app.state.db.session() as session:
        stored = await session.scalars(
            select(PluginEvent).where(PluginEvent.plugin_id == NAS_METADATA["id"])
        )
        events = [(e.previous, e.current, e.message) for e in stored]
    assert events == [("unknown", "healthy", ""), ("healthy", "unhealthy", "sensor lost")]
