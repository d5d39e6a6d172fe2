"""Secrets typed straight into a plugin config are sealed at rest.

The real app on SQLite and PostgreSQL; the ``plugins`` table is read with
plain SQL, so what the database holds is checked, not what the ORM shows.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from typer.testing import CliRunner

from unity.app import create_app
from unity.auth.external import issue_plugin_key
from unity.auth.tokens import Scope, create_token
from unity.cli.main import app as cli_app
from unity.credentials import MasterKeyError
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage import registry
from unity.storage.db import Database
from unity_sdk import PluginMetadata

API = "/api/plugins/v2"
SECRET = "typed-s3cret-never-at-rest"


def digest(value: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(value.encode()).hexdigest(), "length": len(value)}


async def raw_config(db: Database, plugin_id: str) -> str:
    """The stored config as the database has it (text), bypassing the ORM."""
    async with db.engine.connect() as conn:
        value = await conn.scalar(
            text("SELECT CAST(config AS TEXT) FROM plugins WHERE id = :id"), {"id": plugin_id}
        )
    assert isinstance(value, str)
    return value


async def write_raw_config(db: Database, plugin_id: str, config: dict[str, Any]) -> None:
    async with db.engine.begin() as conn:
        cast = "CAST(:config AS JSON)" if db.dialect == "postgresql" else ":config"
        await conn.execute(
            text(f"UPDATE plugins SET config = {cast} WHERE id = :id"),
            {"config": json.dumps(config), "id": plugin_id},
        )


@asynccontextmanager
async def hub(settings: Settings, loader: PluginLoader) -> AsyncIterator[httpx.AsyncClient]:
    """A hub started (and stopped) on the test's database, with an admin client."""
    application = create_app(settings, loader=loader)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        async with application.state.db.session() as session:
            issued = await create_token(session, name="sealing", scope=Scope.ADMIN)
        transport = httpx.ASGITransport(app=application)
        headers = {"Authorization": f"Bearer {issued.value}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub", headers=headers
        ) as client:
            yield client


def database(client: httpx.AsyncClient) -> Database:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    db: Database = app.state.db
    return db


async def test_typed_secret_is_sealed_and_the_plugin_gets_it(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    saved = await client.put(f"{API}/secret-user/config", json={"password": SECRET})
    assert saved.status_code == 200, saved.text
    assert saved.json()["config"]["password"] == "********"
    stored = await raw_config(app.state.db, "secret-user")
    assert SECRET not in stored
    envelope = json.loads(stored)["password"]["$sealed"]
    assert set(envelope) == {"kid", "nonce", "ct"}
    assert SECRET.encode() not in base64.b64decode(envelope["ct"])

    run = (await client.post(f"{API}/secret-user/execute")).json()
    assert run["status"] == "success", run
    assert run["data"] == digest(SECRET)
    for who in (client, reader):
        shown = (await who.get(f"{API}/secret-user/config")).json()
        assert shown["config"]["password"] == "********"
        assert (await who.get(f"{API}/secret-user")).json()["config"]["password"] == "********"

    # A sealed value the hub did not write is refused, naming the field.
    forged = {"$sealed": {"kid": "0badc0de", "nonce": "", "ct": ""}}
    refused = await client.put(f"{API}/secret-user/config", json={"password": forged})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["loc"] == ["password"]

    # Sending the mask back (PUT) or leaving the field out (PATCH) keeps the secret.
    kept = await client.put(f"{API}/secret-user/config", json={"password": "********"})
    assert kept.status_code == 200, kept.text
    patched = await client.patch(f"{API}/secret-user/config", json={"url": "postgresql://x/y"})
    assert patched.status_code == 200, patched.text
    assert SECRET not in await raw_config(app.state.db, "secret-user")
    run = (await client.post(f"{API}/secret-user/execute")).json()
    assert run["data"] == digest(SECRET)


async def test_plaintext_in_the_row_is_sealed_on_start(
    settings: Settings, loader: PluginLoader
) -> None:
    async with hub(settings, loader) as client:
        db = database(client)
        await write_raw_config(db, "secret-user", {"password": SECRET})
        assert SECRET in await raw_config(db, "secret-user")
    async with hub(settings, loader) as client:
        db = database(client)
        sealed = await raw_config(db, "secret-user")
        assert SECRET not in sealed
        assert "$sealed" in sealed
        run = (await client.post(f"{API}/secret-user/execute")).json()
        assert run["status"] == "success", run
        assert run["data"] == digest(SECRET)
    async with hub(settings, loader) as client:
        # Idempotent: a sealed value is left as it is.
        assert await raw_config(database(client), "secret-user") == sealed


async def test_external_plugin_secret_is_sealed_and_read_with_its_own_key(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    metadata = PluginMetadata(
        id="far-away",
        name="Far away",
        version="1.0.0",
        config_schema={
            "type": "object",
            "properties": {"token": {"type": "string", "writeOnly": True}},
        },
    )
    async with app.state.db.session() as session:
        await registry.sync_plugin(session, metadata=metadata, external=True)
        key = await issue_plugin_key(
            session, plugin_id="far-away", hostname="far", enrollment_id=None
        )
    saved = await client.put(f"{API}/far-away/config", json={"token": SECRET})
    assert saved.status_code == 200, saved.text
    assert SECRET not in await raw_config(app.state.db, "far-away")
    own = await client.get(
        f"{API}/far-away/config", headers={"Authorization": f"Bearer {key.value}"}
    )
    assert own.status_code == 200, own.text
    assert own.json()["config"]["token"] == SECRET
    assert (await client.get(f"{API}/far-away/config")).json()["config"]["token"] == "********"
    assert (await client.post(f"{API}/far-away/enable")).status_code == 200


async def test_tampered_or_moved_sealed_value_is_an_invalid_config(
    settings: Settings, loader: PluginLoader
) -> None:
    async with hub(settings, loader) as client:
        db = database(client)
        put = await client.put(f"{API}/secret-user/config", json={"password": SECRET})
        assert put.status_code == 200
        assert (await client.post(f"{API}/secret-user/enable")).status_code == 200
        other = await client.put(f"{API}/configured/config", json={"url": "http://127.0.0.1:9"})
        assert other.status_code == 200
        assert (await client.post(f"{API}/configured/enable")).status_code == 200
        sealed = json.loads(await raw_config(db, "secret-user"))
        # Moved: the same envelope under another plugin's secret field.
        await write_raw_config(db, "configured", {"url": "http://127.0.0.1:9", **sealed})
        # Tampered: one bit of the ciphertext flipped.
        ct = bytearray(base64.b64decode(sealed["password"]["$sealed"]["ct"]))
        ct[0] ^= 1
        sealed["password"]["$sealed"]["ct"] = base64.b64encode(bytes(ct)).decode()
        await write_raw_config(db, "secret-user", sealed)
    async with hub(settings, loader) as client:
        for plugin_id in ("secret-user", "configured"):
            detail = await client.get(f"{API}/{plugin_id}")
            assert detail.status_code == 200, detail.text
            assert detail.json()["enabled"] is False
            error = detail.json()["last_error"]
            assert error.startswith("stored config is invalid"), error
            assert "password" in error
            assert "failed authentication" in error
            assert SECRET not in detail.text
            shown = await client.get(f"{API}/{plugin_id}/config")
            assert shown.status_code == 200
            assert shown.json()["config"]["password"] == "********"
        # A patch that keeps the broken value says which field to set again.
        kept = await client.patch(f"{API}/secret-user/config", json={"url": "postgresql://x/y"})
        assert kept.status_code == 422, kept.text
        assert kept.json()["error"]["details"][0]["loc"] == ["password"]
        fixed = await client.patch(f"{API}/secret-user/config", json={"password": "new-one"})
        assert fixed.status_code == 200, fixed.text
        run = (await client.post(f"{API}/secret-user/execute")).json()
        assert run["data"] == digest("new-one")


async def test_master_key_rotation_reseals_config_secrets(
    settings: Settings, loader: PluginLoader
) -> None:
    async with hub(settings, loader) as client:
        db = database(client)
        await client.put(f"{API}/secret-user/config", json={"password": SECRET})
        before = json.loads(await raw_config(db, "secret-user"))["password"]["$sealed"]["kid"]
    env = {
        "UNITY_DATA_DIR": str(settings.data_dir),
        "UNITY_DATABASE_URL": settings.database_url,
        "UNITY_MASTER_KEY": None,
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["credentials", "rotate-master-key", "--yes"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "1 plugin config(s) re-sealed" in result.output
    # The previous key is gone: the plugin runs only if its secret was re-sealed.
    assert not (settings.data_dir / "master.key.previous").exists()
    async with hub(settings, loader) as client:
        stored = json.loads(await raw_config(database(client), "secret-user"))
        assert stored["password"]["$sealed"]["kid"] != before
        run = (await client.post(f"{API}/secret-user/execute")).json()
        assert run["status"] == "success", run
        assert run["data"] == digest(SECRET)


async def test_hub_refuses_to_start_without_the_key_of_a_sealed_config(
    settings: Settings, loader: PluginLoader
) -> None:
    async with hub(settings, loader) as client:
        await client.put(f"{API}/secret-user/config", json={"password": SECRET})
        kid = json.loads(await raw_config(database(client), "secret-user"))["password"]
    (settings.data_dir / "master.key").unlink()
    with pytest.raises(MasterKeyError) as refused:
        async with hub(settings, loader):
            pass
    assert kid["$sealed"]["kid"] in str(refused.value)
    assert SECRET not in str(refused.value)


async def test_a_field_that_becomes_secret_is_sealed_on_registration(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    def document(secret: bool) -> dict[str, Any]:
        password: dict[str, Any] = {"type": "string", **({"writeOnly": True} if secret else {})}
        return {
            "id": "nas-temp",
            "name": "NAS temperature",
            "version": "1.0.0",
            "metrics": [{"name": "celsius"}],
            "config_schema": {"type": "object", "properties": {"password": password}},
        }

    enrollment = await client.post("/api/enrollment-tokens", json={"max_uses": 2})
    headers = {"Authorization": f"Bearer {enrollment.json()['token']}"}
    body = {"metadata": document(secret=False), "hostname": "nas"}
    first = await anon.post(f"{API}/register", json=body, headers=headers)
    assert first.status_code == 201, first.text
    saved = await client.put(f"{API}/nas-temp/config", json={"password": SECRET})
    assert saved.status_code == 200, saved.text
    assert SECRET in await raw_config(app.state.db, "nas-temp")  # not secret (yet)
    body = {"metadata": document(secret=True), "hostname": "nas"}
    again = await anon.post(f"{API}/register", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert SECRET not in await raw_config(app.state.db, "nas-temp")
    own = {"Authorization": f"Bearer {again.json()['api_key']}"}
    mine = await anon.get(f"{API}/nas-temp/config", headers=own)
    assert mine.json()["config"]["password"] == SECRET
