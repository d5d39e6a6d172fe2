"""External plugins against the real app: enrollment, keys, batches, health, stale."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from unity.auth.external import issue_plugin_key
from unity.storage.models import BatchReceipt, PluginMetric
from unity_sdk import MAX_BATCH_SAMPLES

NAS_METADATA = {
    "id": "nas-temp",
    "name": "NAS temperature",
    "version": "1.0.0",
    "category": "thermal",
    "metrics": [{"name": "celsius", "unit": "C"}],
    "default_interval": 10,
    "config_schema": {
        "type": "object",
        "properties": {
            "sensor": {"type": "string", "default": "cpu"},
            "password": {"type": "string", "writeOnly": True},
        },
        "additionalProperties": False,
    },
}


def _sample(i: int, host: str = "nas") -> dict[str, Any]:
    stamp = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i)
    return {"host": host, "timestamp": stamp.isoformat(), "data": {"celsius": 40 + i}}


def _batch(batch_id: str, n: int = 3, start: int = 0) -> dict[str, Any]:
    return {"batch_id": batch_id, "samples": [_sample(start + i) for i in range(n)]}


async def _enroll(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/api/enrollment-tokens", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    assert token.startswith("unitye_")
    return token


async def _register(
    anon: httpx.AsyncClient, enrollment: str, metadata: dict[str, Any] | None = None
) -> httpx.Response:
    return await anon.post(
        "/api/plugins/v2/register",
        json={"metadata": metadata or NAS_METADATA, "hostname": "nas"},
        headers={"Authorization": f"Bearer {enrollment}"},
    )


@pytest.fixture
async def keys(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> dict[str, str]:
    """Two registered external plugins and their keys."""
    enrollment = await _enroll(client, max_uses=2)
    first = await _register(anon, enrollment)
    second = await _register(anon, enrollment, {**NAS_METADATA, "id": "pi-temp"})
    assert first.status_code == second.status_code == 201
    return {"nas-temp": first.json()["api_key"], "pi-temp": second.json()["api_key"]}


def _auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_register_then_report_and_query(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    key = keys["nas-temp"]
    assert key.startswith("unityk_")
    sent = await anon.post(
        "/api/plugins/v2/nas-temp/metrics", json=_batch("batch-0001"), headers=_auth(key)
    )
    assert sent.json() == {"stored": 3, "duplicate": False}
    listed = (await client.get("/api/plugins/v2", params={"external": True})).json()["items"]
    assert [p["id"] for p in listed] == ["nas-temp", "pi-temp"]
    assert listed[0]["enabled"] is True
    items = (await client.get("/api/plugins/v2/nas-temp/metrics")).json()["items"]
    assert [i["data"]["celsius"] for i in items] == [42, 41, 40]
    assert {i["host"] for i in items} == {"nas"}
    executions = (await client.get("/api/plugins/v2/nas-temp/executions")).json()["items"]
    assert [(e["trigger"], e["metrics_count"]) for e in executions] == [("push", 3)]
    detail = (await client.get("/api/plugins/v2/nas-temp")).json()
    assert detail["external"] is True
    assert detail["last_seen_at"] is not None


async def test_retried_batch_is_stored_once(
    app: FastAPI, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    headers = _auth(keys["nas-temp"])
    first = await anon.post(
        "/api/plugins/v2/nas-temp/metrics", json=_batch("retry-0001"), headers=headers
    )
    again = await anon.post(
        "/api/plugins/v2/nas-temp/metrics", json=_batch("retry-0001"), headers=headers
    )
    assert first.json()["duplicate"] is False
    assert again.json() == {"stored": 0, "duplicate": True}
    async with app.state.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PluginMetric)) == 3


async def test_invalid_sample_refuses_the_whole_batch(
    app: FastAPI, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    batch = _batch("bad-00001", n=5)
    batch["samples"][3]["timestamp"] = "2026-11-01T00:00:00"  # no zone
    response = await anon.post(
        "/api/plugins/v2/nas-temp/metrics", json=batch, headers=_auth(keys["nas-temp"])
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == "sample 3 is invalid; nothing was stored"
    assert error["details"][0]["loc"][:2] == ["samples", 3]
    async with app.state.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PluginMetric)) == 0
        assert await session.scalar(select(func.count()).select_from(BatchReceipt)) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"batch_id": "nan-00001", "samples": [{"host": "h", '
        b'"timestamp": "2026-11-01T00:00:00Z", "data": {"v": NaN}}]}',
        b"[]",
        b'{"batch_id": "x", "samples": []}',
    ],
)
async def test_malformed_batches_are_422(
    anon: httpx.AsyncClient, keys: dict[str, str], body: bytes
) -> None:
    response = await anon.post(
        "/api/plugins/v2/nas-temp/metrics",
        content=body,
        headers={**_auth(keys["nas-temp"]), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text


async def test_oversized_batches_are_413(anon: httpx.AsyncClient, keys: dict[str, str]) -> None:
    headers = _auth(keys["nas-temp"])
    too_many = _batch("big-000001", n=MAX_BATCH_SAMPLES + 1)
    response = await anon.post("/api/plugins/v2/nas-temp/metrics", json=too_many, headers=headers)
    assert response.status_code == 413
    huge = {"batch_id": "huge-00001", "samples": [{**_sample(0), "data": {"x": "y" * 9_000_000}}]}
    response = await anon.post("/api/plugins/v2/nas-temp/metrics", json=huge, headers=headers)
    assert response.status_code == 413


async def test_a_batch_may_exceed_the_general_body_limit(
    app: FastAPI, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    """Batches have their own, larger limit (UNITY_MAX_BATCH_BYTES): 2 MiB of
    samples pass where any other body would be refused past 1 MiB."""
    general = app.state.settings.max_body_bytes
    batch = _batch("large-0001", n=MAX_BATCH_SAMPLES)
    for sample in batch["samples"]:
        sample["data"]["note"] = "n" * 2000
    size = len(httpx.Request("POST", "/", json=batch).content)
    assert general < size < app.state.settings.max_batch_bytes
    response = await anon.post(
        "/api/plugins/v2/nas-temp/metrics", json=batch, headers=_auth(keys["nas-temp"])
    )
    assert response.json() == {"stored": MAX_BATCH_SAMPLES, "duplicate": False}
    # The same size anywhere else is refused before it is read.
    response = await anon.post("/api/plugins/v2/nas-temp/health", json=batch)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_health_report_and_staleness(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    report = {"status": "degraded", "message": "buffering", "buffered": 12, "dropped": 3}
    response = await anon.post(
        "/api/plugins/v2/nas-temp/health", json=report, headers=_auth(keys["nas-temp"])
    )
    assert response.status_code == 200
    health = (await client.get("/api/plugins/v2/nas-temp/health")).json()
    assert (health["status"], health["message"]) == ("degraded", "buffering")
    detail = (await client.get("/api/plugins/v2/nas-temp")).json()
    assert detail["health_details"] == {"buffered": 12, "dropped": 3}
    assert detail["state"] != "stale"
    # Three missed 10-second intervals later it turns stale.
    async with app.state.db.session() as session:
        from unity.storage.models import Plugin

        row = await session.get(Plugin, "nas-temp")
        assert row is not None
        row.last_seen_at = datetime.now(UTC) - timedelta(seconds=31)
    assert (await client.get("/api/plugins/v2/nas-temp")).json()["state"] == "stale"


async def test_config_for_own_key_shows_values_and_people_see_masks(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    saved = await client.put(
        "/api/plugins/v2/nas-temp/config",
        json={"sensor": "hdd", "password": "hunter2", "interval": 5},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["config"]["password"] == "********"
    bad = await client.put("/api/plugins/v2/nas-temp/config", json={"nope": 1})
    assert bad.status_code == 422
    own = await anon.get("/api/plugins/v2/nas-temp/config", headers=_auth(keys["nas-temp"]))
    assert own.json()["config"] == {"sensor": "hdd", "password": "hunter2"}
    assert own.json()["interval"] == 5
    people = await client.get("/api/plugins/v2/nas-temp/config")
    assert people.json()["config"]["password"] == "********"
    assert "hunter2" not in (await client.get("/api/plugins/v2/nas-temp")).text


async def test_enrollment_rules(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    single = await _enroll(client)
    assert (await _register(anon, single)).status_code == 201
    used = await _register(anon, single, {**NAS_METADATA, "id": "other"})
    assert used.status_code == 401
    assert (await _register(anon, "unitye_bogus")).status_code == 401
    assert (
        await anon.post(
            "/api/plugins/v2/register", json={"metadata": NAS_METADATA, "hostname": "x"}
        )
    ).status_code == 401
    expired = await client.post("/api/enrollment-tokens", json={"expires_in_hours": 0.0001})
    listed = await client.get("/api/enrollment-tokens")
    assert "token" not in listed.text
    revocable = await _enroll(client)
    token_id = revocable.split("_")[1]
    assert (await client.delete(f"/api/enrollment-tokens/{token_id}")).status_code == 204
    assert (await _register(anon, revocable, {**NAS_METADATA, "id": "third"})).status_code == 401
    await asyncio.sleep(0.5)
    late = await _register(anon, expired.json()["token"], {**NAS_METADATA, "id": "late"})
    assert late.status_code == 401
    in_hub = await _register(anon, await _enroll(client), {**NAS_METADATA, "id": "counter"})
    assert in_hub.status_code == 409
    invalid = await _register(anon, await _enroll(client), {**NAS_METADATA, "id": "Bad Id"})
    assert invalid.status_code == 422


async def test_external_plugins_cannot_be_executed(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    response = await client.post("/api/plugins/v2/nas-temp/execute")
    assert response.status_code == 409
    assert (await client.post("/api/plugins/v2/nas-temp/disable")).json()["enabled"] is False
    assert (await client.post("/api/plugins/v2/nas-temp/enable")).json()["enabled"] is True


PLUGIN_ENDPOINTS = [
    ("GET", "/api/plugins/v2/nas-temp/config", None),
    ("POST", "/api/plugins/v2/nas-temp/metrics", _batch("matrix-001")),
    ("POST", "/api/plugins/v2/nas-temp/health", {"status": "healthy"}),
]


@pytest.mark.parametrize(("method", "path", "body"), PLUGIN_ENDPOINTS)
async def test_authorization_matrix(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    keys: dict[str, str],
    read_token: str,
    admin_token: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    # A second key of the same plugin (another token cannot register its id), revoked.
    async with app.state.db.session() as session:
        revoked_key = await issue_plugin_key(
            session, plugin_id="nas-temp", hostname="nas", enrollment_id=None
        )
    assert (
        await client.delete(f"/api/plugins/v2/nas-temp/keys/{revoked_key.id}")
    ).status_code == 204
    is_read = method == "GET"
    cases = {
        "none": (None, 401),
        "malformed": ("nonsense", 401),
        "bad key": ("unityk_aaaaaaaaaaaa_" + "b" * 43, 401),
        "revoked key": (revoked_key.value, 401),
        "other plugin's key": (keys["pi-temp"], 403),
        "read token": (read_token, 200 if is_read else 403),
        "admin token": (admin_token, 200 if is_read else 403),
        "own key": (keys["nas-temp"], 200),
    }
    for name, (credential, expected) in cases.items():
        if name == "own key":
            continue
        headers = _auth(credential) if credential else {}
        response = await anon.request(method, path, json=body, headers=headers)
        assert response.status_code == expected, (name, response.text)
        if expected >= 400:
            assert "error" in response.json()
    async with app.state.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PluginMetric)) == 0
        from unity.storage.models import Plugin

        row = await session.get(Plugin, "nas-temp")
        assert row is not None
        assert row.health_checked_at is None
    own = await anon.request(method, path, json=body, headers=_auth(keys["nas-temp"]))
    assert own.status_code == 200


async def test_revoked_key_gets_401_on_next_report(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    listed = (await client.get("/api/plugins/v2/nas-temp/keys")).json()
    assert len(listed) == 1
    assert "api_key" not in listed[0]
    assert (
        await client.delete(f"/api/plugins/v2/nas-temp/keys/{listed[0]['id']}")
    ).status_code == 204
    response = await anon.post(
        "/api/plugins/v2/nas-temp/metrics",
        json=_batch("after-revoke"),
        headers=_auth(keys["nas-temp"]),
    )
    assert response.status_code == 401
    assert (
        await client.delete(f"/api/plugins/v2/nas-temp/keys/{listed[0]['id']}")
    ).status_code == 404
