"""The ingest hot path against the real app: remembered keys, receipts, all-or-nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from unity.auth import keys, plugin_keys
from unity.storage.models import (
    BatchReceipt,
    LatestMetric,
    Plugin,
    PluginApiKey,
    PluginExecution,
    PluginMetric,
)

METADATA = {
    "id": "ups-agent",
    "name": "UPS agent",
    "version": "1.0.0",
    "metrics": [{"name": "load.percent", "unit": "%"}, {"name": "battery", "unit": "%"}],
    "default_interval": 10,
}
METRICS = "/api/plugins/v2/ups-agent/metrics"


def _batch(batch_id: str, n: int = 3, start: int = 0) -> dict[str, Any]:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "batch_id": batch_id,
        "samples": [
            {
                "host": "ups",
                "timestamp": (base + timedelta(seconds=start + i)).isoformat(),
                "data": {"load": {"percent": 20 + i}, "battery": 100 - i},
            }
            for i in range(n)
        ],
    }


def _auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def _register(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, *, takeover: str | None = None
) -> str:
    body: dict[str, Any] = {"max_uses": 1}
    if takeover is not None:
        body["takeover"] = takeover
    enrollment = (await client.post("/api/enrollment-tokens", json=body)).json()["token"]
    response = await anon.post(
        "/api/plugins/v2/register",
        json={"metadata": METADATA, "hostname": "ups"},
        headers=_auth(enrollment),
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key


@pytest.fixture
async def key(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> str:
    return await _register(client, anon)


async def _count(app: FastAPI, model: Any) -> int:
    async with app.state.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _post(anon: httpx.AsyncClient, key: str, batch: dict[str, Any]) -> httpx.Response:
    return await anon.post(METRICS, json=batch, headers=_auth(key))


async def test_a_remembered_key_revoked_on_this_hub_gets_401_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, key: str
) -> None:
    assert (await _post(anon, key, _batch("before-0001"))).status_code == 200
    assert (await _post(anon, key, _batch("before-0002"))).status_code == 200  # remembered
    key_id = (await client.get("/api/plugins/v2/ups-agent/keys")).json()[0]["id"]
    assert (await client.delete(f"/api/plugins/v2/ups-agent/keys/{key_id}")).status_code == 204
    response = await _post(anon, key, _batch("after-00001"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_takeover_forgets_the_previous_registrations_keys_at_once(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, key: str
) -> None:
    assert (await _post(anon, key, _batch("old-owner-01"))).status_code == 200
    new_key = await _register(client, anon, takeover="ups-agent")
    assert (await _post(anon, key, _batch("old-owner-02"))).status_code == 401
    assert (await _post(anon, new_key, _batch("new-owner-01"))).status_code == 200


async def test_a_revocation_by_another_hub_is_seen_when_the_memory_expires(
    app: FastAPI, anon: httpx.AsyncClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another hub revokes in the database only: this hub accepts the key until
    it looks it up again, KEY_CACHE_SECONDS after it verified it."""
    monkeypatch.setattr(keys, "KEY_CACHE_SECONDS", 0.5)
    assert (await _post(anon, key, _batch("remote-0001"))).status_code == 200
    async with app.state.db.session() as session:
        await session.execute(update(PluginApiKey).values(revoked_at=datetime.now(UTC)))
    assert (await _post(anon, key, _batch("remote-0002"))).status_code == 200
    await asyncio.sleep(0.6)
    assert (await _post(anon, key, _batch("remote-0003"))).status_code == 401


async def test_a_key_is_looked_up_once_and_last_used_is_written_at_most_once_a_minute(
    app: FastAPI, anon: httpx.AsyncClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = 0
    real = plugin_keys.PLUGIN_KEYS.verify

    async def counted(session: Any, value: str) -> Any:
        nonlocal lookups
        lookups += 1
        return await real(session, value)

    monkeypatch.setattr(plugin_keys.PLUGIN_KEYS, "verify", counted)
    for n in range(5):
        assert (await _post(anon, key, _batch(f"used-{n:05d}"))).status_code == 200
    assert lookups == 1
    async with app.state.db.session() as session:
        first = await session.scalar(select(PluginApiKey.last_used_at))
    assert first is not None
    # Looked up again (memory expired) within the minute: last_used_at stays.
    monkeypatch.setattr(keys, "KEY_CACHE_SECONDS", 0.0)
    assert (await _post(anon, key, _batch("used-again-1"))).status_code == 200
    assert (await _post(anon, key, _batch("used-again-2"))).status_code == 200
    assert lookups == 3
    async with app.state.db.session() as session:
        assert await session.scalar(select(PluginApiKey.last_used_at)) == first


async def test_a_repeated_batch_id_is_a_duplicate_and_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, key: str
) -> None:
    first = await _post(anon, key, _batch("twice-00001"))
    assert first.json() == {"stored": 3, "duplicate": False}
    runs = (await client.get("/api/plugins/v2/ups-agent")).json()["run_count"]
    # The same id with other samples: refused as a duplicate, not stored.
    again = await _post(anon, key, _batch("twice-00001", n=2, start=100))
    assert (again.status_code, again.json()) == (200, {"stored": 0, "duplicate": True})
    assert await _count(app, PluginMetric) == 3
    assert await _count(app, BatchReceipt) == 1
    assert await _count(app, PluginExecution) == 1
    assert (await client.get("/api/plugins/v2/ups-agent")).json()["run_count"] == runs


async def test_concurrent_copies_of_one_batch_store_it_once(
    app: FastAPI, anon: httpx.AsyncClient, key: str
) -> None:
    answers = await asyncio.gather(*(_post(anon, key, _batch("copies-0001")) for _ in range(6)))
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 5
    assert await _count(app, PluginMetric) == 3


async def test_a_refused_batch_leaves_nothing_half_written(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, key: str
) -> None:
    assert (await _post(anon, key, _batch("good-000001"))).status_code == 200
    detail = (await client.get("/api/plugins/v2/ups-agent")).json()
    batch = _batch("bad-0000001", n=4, start=10)
    batch["samples"][2]["data"]["battery"] = "full"  # a declared gauge holding text
    response = await _post(anon, key, batch)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == "sample 2 is invalid; nothing was stored"
    assert error["details"][0]["loc"] == ["samples", 2, "data"]
    assert await _count(app, PluginMetric) == 3
    assert await _count(app, BatchReceipt) == 1
    assert await _count(app, PluginExecution) == 1
    async with app.state.db.session() as session:
        latest = await session.scalar(select(LatestMetric.data))
        row = await session.get(Plugin, "ups-agent")
    assert latest == _batch("good-000001")["samples"][2]["data"]
    assert row is not None
    assert row.run_count == detail["run_count"]
    assert row.last_run_at == datetime(2026, 11, 1, 0, 0, 2, tzinfo=UTC)
    # The refused id was not spent: fixed, the same batch is stored.
    batch["samples"][2]["data"]["battery"] = 99
    assert (await _post(anon, key, batch)).json() == {"stored": 4, "duplicate": False}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON: Expecting property name"),
        (b'{"batch_id": "abc", "samples": []}', "batch is invalid"),
        (
            b'{"batch_id": "nan-000001", "samples": [{"host": "h", '
            b'"timestamp": "2026-11-01T00:00:00Z", "data": {"battery": NaN}}]}',
            "sample 0 is invalid; nothing was stored",
        ),
    ],
)
async def test_the_one_pass_answers_bad_bodies_as_before(
    anon: httpx.AsyncClient, key: str, body: bytes, message: str
) -> None:
    response = await anon.post(
        METRICS, content=body, headers={**_auth(key), "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(message)


async def test_a_batch_is_checked_against_the_metadata_of_a_new_registration(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """The hub remembers a plugin's metadata between batches; a registration
    changing it applies to the very next batch."""
    enrollment = (await client.post("/api/enrollment-tokens", json={"max_uses": 2})).json()
    headers = _auth(enrollment["token"])
    body = {"metadata": METADATA, "hostname": "ups"}
    first = await anon.post("/api/plugins/v2/register", json=body, headers=headers)
    key = first.json()["api_key"]
    online = _batch("status-0001")
    for sample in online["samples"]:
        sample["data"]["status"] = "online"
    assert (await _post(anon, key, online)).json() == {"stored": 3, "duplicate": False}
    # The new schema declares status a gauge: text there is refused from now on.
    metrics = [*METADATA["metrics"], {"name": "status", "unit": "%"}]  # type: ignore[misc]
    body = {"metadata": {**METADATA, "metrics": metrics}, "hostname": "ups"}
    again = await anon.post("/api/plugins/v2/register", json=body, headers=headers)
    assert again.status_code == 201, again.text
    online["batch_id"] = "status-0002"
    response = await _post(anon, key, online)
    assert response.status_code == 422, response.text
    assert await _count(app, BatchReceipt) == 1
    assert await _count(app, PluginMetric) == 3
