"""An agent reports its instances' samples and health with its own key, through the
external plugins' batch path: receipts, idempotent batch ids, all or nothing."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.agents.support import API, auth, enroll, joined, sample
from tests.api.helpers import error_of
from unity.auth.agents import revoke_agent_keys
from unity.storage.models import BatchReceipt, PluginMetric

DOCUMENT = {"cpu": {"percent": 12.5}, "memory": {"percent": 41.0}, "uptime": 3600}


def batch(batch_id: str, host: str = "nas.lan", **data: Any) -> dict[str, Any]:
    return {"batch_id": batch_id, "samples": [sample(host, {**DOCUMENT, **data})]}


async def stored(app: FastAPI, plugin_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.db.session() as session:
        rows = await session.scalars(
            select(PluginMetric)
            .where(PluginMetric.plugin_id == plugin_id)
            .order_by(PluginMetric.id)
        )
        return [(r.host, r.data) for r in rows]


async def test_an_agent_reports_for_its_own_instance(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    sent = await anon.post(
        f"{API}/system-info@nas/metrics", json=batch("batch-1-0001"), headers=auth(key)
    )
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"stored": 1, "duplicate": False}
    # Stored under the host id, whatever host name the sample gave.
    assert await stored(app, "system-info@nas") == [("nas", DOCUMENT)]
    listed = (await client.get(f"{API}/system-info@nas/metrics")).json()["items"]
    assert [(m["host"], m["data"]) for m in listed] == [("nas", DOCUMENT)]
    series = await client.get(
        f"{API}/system-info@nas/metrics", params={"field": "cpu.percent", "host": "nas"}
    )
    assert series.status_code == 200, series.text
    detail = (await client.get(f"{API}/system-info@nas")).json()
    assert (detail["state"], detail["run_count"]) == ("healthy", 1)
    runs = (await client.get(f"{API}/system-info@nas/executions")).json()["items"]
    assert [(r["status"], r["metrics_count"]) for r in runs] == [("success", 1)]
    events = (await client.get(f"{API}/system-info@nas/events")).json()["items"]
    assert [(e["previous"], e["current"]) for e in events] == [("unknown", "healthy")]

    health = {"status": "degraded", "message": "swap is nearly full", "buffered": 2, "dropped": 0}
    told = await anon.post(f"{API}/system-info@nas/health", json=health, headers=auth(key))
    assert told.status_code == 200, told.text
    detail = (await client.get(f"{API}/system-info@nas")).json()
    assert (detail["health"]["status"], detail["state"]) == ("degraded", "degraded")


async def test_a_repeated_batch_is_stored_once_and_a_bad_one_not_at_all(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    path = f"{API}/system-info@nas/metrics"
    assert (await anon.post(path, json=batch("batch-1-0001"), headers=auth(key))).json()[
        "stored"
    ] == 1
    repeated = await anon.post(path, json=batch("batch-1-0001"), headers=auth(key))
    assert repeated.json() == {"stored": 0, "duplicate": True}
    # One sample a declared gauge cannot hold refuses the whole batch.
    bad = {
        "batch_id": "batch-2-0001",
        "samples": [sample("nas", DOCUMENT), sample("nas", {"memory": {"percent": "lots"}})],
    }
    error = error_of(await anon.post(path, json=bad, headers=auth(key)), 422)
    assert "memory.percent" in str(error)
    assert len(await stored(app, "system-info@nas")) == 1
    async with app.state.db.session() as session:
        receipts = await session.scalar(
            select(func.count())
            .select_from(BatchReceipt)
            .where(BatchReceipt.plugin_id == "system-info@nas")
        )
    assert receipts == 1


async def test_another_hosts_instance_and_plain_plugins_are_refused(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    pi = await joined(client, anon, "pi")
    for path in (f"{API}/system-info@nas/metrics", f"{API}/system-info@nas/health"):
        body: dict[str, Any] = (
            batch("batch-x-0001")
            if path.endswith("metrics")
            else {"status": "healthy", "message": ""}
        )
        error = error_of(await anon.post(path, json=body, headers=auth(pi)), 403)
        assert "belongs to host 'pi'" in error["message"]
    assert await stored(app, "system-info@nas") == []
    # An instance of a host that has none by that name: refused the same way.
    error_of(
        await anon.post(
            f"{API}/system-info/metrics", json=batch("batch-y-0001"), headers=auth(nas)
        ),
        403,
    )
    # A plugin's own key is not the agent's.
    registered = await anon.post(
        f"{API}/register",
        json={"metadata": {"id": "ext", "name": "Ext", "version": "1.0.0"}, "hostname": "nas"},
        headers=auth(await enroll(client)),
    )
    plugin_key = registered.json()["api_key"]
    error = error_of(
        await anon.post(
            f"{API}/system-info@nas/metrics", json=batch("batch-z-0001"), headers=auth(plugin_key)
        ),
        403,
    )
    assert "another plugin" in error["message"]
    error_of(
        await anon.post(f"{API}/ext/metrics", json=batch("batch-w-0001"), headers=auth(nas)), 403
    )
    # A known host's instance that does not exist is 404.
    missing = await anon.post(
        f"{API}/gpu@nas/metrics", json=batch("batch-v-0001"), headers=auth(nas)
    )
    error_of(missing, 404)


async def test_a_revoked_agent_key_is_401_at_once(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    path = f"{API}/system-info@nas/metrics"
    # Verified once, so remembered: the revocation must make the hub forget it.
    assert (await anon.post(path, json=batch("batch-1-0001"), headers=auth(key))).status_code == 200
    async with app.state.db.session() as session:
        assert await revoke_agent_keys(session, "nas") == 1
    error = error_of(await anon.post(path, json=batch("batch-2-0001"), headers=auth(key)), 401)
    assert "revoked" in error["message"]
    error_of(await anon.get("/api/agents/v1/assignments", headers=auth(key)), 401)
    assert len(await stored(app, "system-info@nas")) == 1
