"""Registration of external plugins on the real app (SQLite and PostgreSQL):
who owns an id, idempotent retries, secrets across schema changes, and the
atomic claim of an enrollment token's uses."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from unity.storage.models import EnrollmentToken, Plugin, PluginApiKey
from unity_sdk import ExternalPluginBase, MetricField, PluginMetadata

NAS = {
    "id": "nas-temp",
    "name": "NAS temperature",
    "version": "1.0.0",
    "metrics": [{"name": "celsius", "unit": "C"}],
    "default_interval": 10,
    "config_schema": {
        "type": "object",
        "properties": {
            "sensor": {"type": "string", "default": "cpu"},
            "password": {"type": "string", "writeOnly": True},
        },
    },
}


def _auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def _enroll(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/api/enrollment-tokens", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def _register(
    anon: httpx.AsyncClient,
    enrollment: str,
    metadata: dict[str, Any] | None = None,
    **extra: Any,
) -> httpx.Response:
    return await anon.post(
        "/api/plugins/v2/register",
        json={"metadata": metadata or NAS, "hostname": "nas", **extra},
        headers=_auth(enrollment),
    )


async def _uses(client: httpx.AsyncClient, enrollment: str) -> int:
    token_id = enrollment.split("_")[1]
    rows = (await client.get("/api/enrollment-tokens")).json()
    uses: int = next(r["uses"] for r in rows if r["id"] == token_id)
    return uses


async def _credential_in_config(client: httpx.AsyncClient) -> None:
    stored = await client.post(
        "/api/credentials", json={"kind": "password", "name": "nas-pass", "password": "hunter2"}
    )
    assert stored.status_code == 201, stored.text
    saved = await client.put(
        "/api/plugins/v2/nas-temp/config",
        json={"sensor": "hdd", "password": {"$credential": "nas-pass"}},
    )
    assert saved.status_code == 200, saved.text


async def test_a_fresh_token_cannot_take_over_an_owned_id(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    owner = await _register(anon, await _enroll(client))
    assert owner.status_code == 201, owner.text
    await _credential_in_config(client)
    own = await anon.get("/api/plugins/v2/nas-temp/config", headers=_auth(owner.json()["api_key"]))
    assert own.json()["config"]["password"] == "hunter2"

    intruder_token = await _enroll(client)
    changed = {**NAS, "name": "Intruder", "version": "6.6.6"}
    intruder = await _register(anon, intruder_token, changed, key_secret=secrets.token_urlsafe(32))
    assert intruder.status_code == 409, intruder.text
    error = intruder.json()["error"]
    assert "already registered by another enrollment token" in error["message"]
    assert "takeover" in error["message"]
    assert "api_key" not in intruder.text
    assert "hunter2" not in intruder.text
    # Nothing changed and the token was not spent: it still registers another id.
    assert await _uses(client, intruder_token) == 0
    detail = (await client.get("/api/plugins/v2/nas-temp")).json()
    assert (detail["name"], detail["version"]) == ("NAS temperature", "1.0.0")
    keys = (await client.get("/api/plugins/v2/nas-temp/keys")).json()
    assert [k["id"] for k in keys] == [owner.json()["key_id"]]
    other = await _register(anon, intruder_token, {**NAS, "id": "pi-temp"})
    assert other.status_code == 201, other.text
    # The other id's key is no way into the first plugin's resolved config either.
    refused = await anon.get(
        "/api/plugins/v2/nas-temp/config", headers=_auth(other.json()["api_key"])
    )
    assert refused.status_code == 403
    assert "hunter2" not in refused.text


async def test_an_admin_hands_an_id_over_with_a_takeover_token(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    first = (await _register(anon, await _enroll(client))).json()
    await _credential_in_config(client)

    unknown = await client.post("/api/enrollment-tokens", json={"takeover": "no-such-plugin"})
    assert unknown.status_code == 422
    in_hub = await client.post("/api/enrollment-tokens", json={"takeover": "counter"})
    assert in_hub.status_code == 422
    takeover = await client.post("/api/enrollment-tokens", json={"takeover": "nas-temp"})
    assert takeover.status_code == 201, takeover.text
    assert takeover.json()["takeover"] == "nas-temp"
    token = takeover.json()["token"]

    elsewhere = await _register(anon, token, {**NAS, "id": "pi-temp"})
    assert elsewhere.status_code == 403
    assert await _uses(client, token) == 0
    second = await _register(anon, token)
    assert second.status_code == 201, second.text
    # The new registration owns the id: the old key is revoked, the config kept.
    old = await anon.get("/api/plugins/v2/nas-temp/config", headers=_auth(first["api_key"]))
    assert old.status_code == 401
    new = await anon.get("/api/plugins/v2/nas-temp/config", headers=_auth(second.json()["api_key"]))
    assert new.json()["config"]["password"] == "hunter2"
    # The previous owner's token no longer owns it.
    again = await _register(anon, await _enroll(client))
    assert again.status_code == 409


async def test_a_retried_registration_with_the_proposed_key_is_idempotent(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await _enroll(client)
    secret = secrets.token_urlsafe(32)
    first = await _register(anon, token, key_secret=secret)
    assert first.status_code == 201, first.text
    retry = await _register(anon, token, key_secret=secret)
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert first.json()["api_key"].endswith("_" + secret)
    assert await _uses(client, token) == 1
    other = await _register(anon, token, key_secret=secrets.token_urlsafe(32))
    assert other.status_code == 401
    no_key = await _register(anon, token)
    assert no_key.status_code == 401
    async with app.state.db.session() as session:
        hashes = list(await session.scalars(select(PluginApiKey.secret_hash)))
    assert len(hashes) == 1
    assert secret not in hashes[0]
    works = await anon.get(
        "/api/plugins/v2/nas-temp/config", headers=_auth(first.json()["api_key"])
    )
    assert works.status_code == 200


@pytest.mark.parametrize("secret", ["short", "x" * 43 + "y", "!" * 43, ""])
async def test_a_malformed_proposed_key_is_422_and_spends_nothing(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, secret: str
) -> None:
    token = await _enroll(client)
    response = await _register(anon, token, key_secret=secret)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["key_secret"]
    assert secret not in response.text or secret == ""
    assert await _uses(client, token) == 0


@pytest.mark.parametrize(
    "password",
    [{"type": "string"}, None],
    ids=["no-longer-secret", "removed-from-schema"],
)
async def test_a_changed_schema_never_unmasks_a_secret(
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    reader: httpx.AsyncClient,
    password: dict[str, Any] | None,
) -> None:
    token = await _enroll(client, max_uses=2)
    assert (await _register(anon, token)).status_code == 201
    saved = await client.put(
        "/api/plugins/v2/nas-temp/config", json={"sensor": "hdd", "password": "hunter2"}
    )
    assert saved.status_code == 200, saved.text
    assert "hunter2" not in (await reader.get("/api/plugins/v2/nas-temp/config")).text

    properties: dict[str, Any] = {"sensor": {"type": "string"}}
    if password is not None:
        properties["password"] = password
    changed = {
        **NAS,
        "version": "2.0.0",
        "config_schema": {"type": "object", "properties": properties},
    }
    again = await _register(anon, token, changed)
    assert again.status_code == 201, again.text
    for path in ("/api/plugins/v2/nas-temp/config", "/api/plugins/v2/nas-temp"):
        response = await reader.get(path)
        assert response.status_code == 200
        assert "hunter2" not in response.text, path
    config = (await reader.get("/api/plugins/v2/nas-temp/config")).json()["config"]
    assert config["sensor"] == "hdd"
    assert "password" not in config
    own = await anon.get("/api/plugins/v2/nas-temp/config", headers=_auth(again.json()["api_key"]))
    assert "hunter2" not in own.text


async def test_concurrent_registrations_spend_each_single_use_token_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    tokens = [await _enroll(client) for _ in range(10)]
    # Two requests per token, each for its own id, all at once; several clients so
    # that the requests really overlap inside the app.
    transport = httpx.ASGITransport(app=app)

    async def attempt(n: int) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            response = await _register(c, tokens[n % 10], {**NAS, "id": f"plugin-{n:02d}"})
            assert response.status_code in (201, 401), response.text
            return response.status_code

    statuses = await asyncio.gather(*(attempt(n) for n in range(20)))
    assert statuses.count(201) == 10
    assert statuses.count(401) == 10
    async with app.state.db.session() as session:
        uses = list(await session.scalars(select(EnrollmentToken.uses)))
        keys = await session.scalar(select(func.count()).select_from(PluginApiKey))
        plugins = await session.scalar(
            select(func.count()).select_from(Plugin).where(Plugin.external.is_(True))
        )
    assert uses == [1] * 10
    assert keys == plugins == 10


class NasTemp(ExternalPluginBase):
    hub_backoff_max = 0.05

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="nas-temp",
            name="NAS temperature",
            version="1.0.0",
            metrics=[MetricField(name="celsius", unit="C")],
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"celsius": 41}


class LosesFirstRegisterAnswer(httpx.AsyncBaseTransport):
    """The real app behind a connection that drops the first registration's answer."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.registrations = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/register"):
            self.registrations += 1
            if self.registrations == 1:
                await response.aread()
                raise httpx.ReadError("connection reset", request=request)
        return response


async def test_the_sdk_survives_a_lost_registration_answer_with_a_single_use_token(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = await _enroll(client)
    transport = LosesFirstRegisterAnswer(app)
    plugin, stop = NasTemp(), asyncio.Event()
    task = asyncio.create_task(
        plugin.run(
            "http://hub",
            enrollment_token=token,
            state_dir=tmp_path,
            stop_event=stop,
            transport=transport,
        )
    )
    deadline = time.monotonic() + 20
    while plugin.sent < 1 and not task.done():
        assert time.monotonic() < deadline, "the plugin never reported"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert transport.registrations == 2
    assert await _uses(client, token) == 1
    keys = (await client.get("/api/plugins/v2/nas-temp/keys")).json()
    saved = json.loads((tmp_path / "nas-temp.json").read_text())
    assert [k["id"] for k in keys] == [saved["key_id"]]
    items = (await client.get("/api/plugins/v2/nas-temp/metrics")).json()["items"]
    assert [i["data"]["celsius"] for i in items] == [41]


async def test_concurrent_registrations_of_one_new_id_have_one_owner(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    tokens = [await _enroll(client) for _ in range(8)]
    transport = httpx.ASGITransport(app=app)

    async def attempt(token: str) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            response = await _register(c, token)
            assert response.status_code in (201, 409), response.text
            return response.status_code

    statuses = await asyncio.gather(*(attempt(token) for token in tokens))
    assert statuses.count(201) == 1
    async with app.state.db.session() as session:
        uses = list(await session.scalars(select(EnrollmentToken.uses)))
        owner = await session.scalar(
            select(Plugin.owner_enrollment_id).where(Plugin.id == "nas-temp")
        )
    assert sorted(uses) == [0] * 7 + [1]
    winner = tokens[statuses.index(201)]
    assert owner == winner.split("_")[1]
