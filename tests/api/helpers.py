"""Helpers for the API tests: clients, tokens, extra apps and direct database reads.

The routes are exercised over httpx's ASGI transport against the real app; the
database is read directly only to check what an answer cannot show (hashed
tokens, stored secrets, rows that must not have been written).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import BaseModel, SecretStr
from sqlalchemy import func, select

from unity.app import create_app
from unity.auth.tokens import IssuedToken, Scope, create_token
from unity.credentials import sealing
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage import metrics as metric_store
from unity.storage.models import Plugin, PluginExecution, PluginMetric
from unity_sdk import PluginBase, PluginMetadata, secret_fields

API = "/api/plugins/v2"
NO_ENTRY_POINTS = "unity.plugins.none-in-tests"

# (method, route template, concrete path, body): every route that takes a hub token.
READS = [
    ("GET", "/api/plugins/v2", f"{API}", None),
    ("GET", "/api/plugins/v2/{plugin_id}", f"{API}/counter", None),
    ("GET", "/api/plugins/v2/{plugin_id}/config", f"{API}/counter/config", None),
    ("GET", "/api/plugins/v2/{plugin_id}/health", f"{API}/counter/health", None),
    ("GET", "/api/plugins/v2/{plugin_id}/metrics", f"{API}/counter/metrics", None),
    ("GET", "/api/plugins/v2/{plugin_id}/executions", f"{API}/counter/executions", None),
    ("GET", "/api/plugins/v2/{plugin_id}/events", f"{API}/counter/events", None),
    ("GET", "/metrics", "/metrics", None),
]
WRITES = [
    ("POST", "/api/plugins/v2/rescan", f"{API}/rescan", None),
    ("POST", "/api/plugins/v2/{plugin_id}/enable", f"{API}/counter/enable", None),
    ("POST", "/api/plugins/v2/{plugin_id}/disable", f"{API}/counter/disable", None),
    ("POST", "/api/plugins/v2/{plugin_id}/execute", f"{API}/counter/execute", None),
    ("PUT", "/api/plugins/v2/{plugin_id}/config", f"{API}/counter/config", {"note": "x"}),
    ("PATCH", "/api/plugins/v2/{plugin_id}/config", f"{API}/counter/config", {"note": "x"}),
]
ENDPOINTS = READS + WRITES


async def send(client: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    if body is None:
        return await client.request(method, path)
    return await client.request(method, path, json=body)


def client_for(
    app: FastAPI, token: str | None = None, *, raise_app_exceptions: bool = True
) -> httpx.AsyncClient:
    """A client of ``app``; with ``raise_app_exceptions=False`` a crash is a 500 answer."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers)


async def issue_token(
    app: FastAPI, scope: Scope = Scope.READ, *, expires_at: datetime | None = None
) -> IssuedToken:
    async with app.state.db.session() as session:
        return await create_token(
            session, name=f"api-test-{scope.value}", scope=scope, expires_at=expires_at
        )


@asynccontextmanager
async def running_app(settings: Settings, classes: Iterable[type[Any]]) -> AsyncIterator[FastAPI]:
    """A hub loading exactly ``classes``, over the database ``settings`` names."""
    loader = PluginLoader(list(classes), group=NO_ENTRY_POINTS)
    application = create_app(settings, loader=loader)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def plugin_row(app: FastAPI, plugin_id: str) -> Plugin:
    async with app.state.db.session() as session:
        row = await session.get(Plugin, plugin_id)
    assert row is not None, plugin_id
    return row


async def stored_config(app: FastAPI, plugin_id: str) -> dict[str, Any]:
    """The plugin's stored config with its sealed secrets opened; asserts first that
    the row holds no secret field in plain text (they are sealed at rest)."""
    row = await plugin_row(app, plugin_id)
    manager = app.state.manager
    secrets = secret_fields(await manager.metadata_for(plugin_id))
    assert not sealing.needs_sealing(row.config, secrets), "a secret is stored in plain text"
    config: dict[str, Any] = manager.vault.opened(plugin_id, row.config)
    return config


async def execution_rows(app: FastAPI, plugin_id: str) -> list[PluginExecution]:
    async with app.state.db.session() as session:
        stmt = (
            select(PluginExecution)
            .where(PluginExecution.plugin_id == plugin_id)
            .order_by(PluginExecution.id)
        )
        return list((await session.scalars(stmt)).all())


async def metric_count(app: FastAPI, plugin_id: str) -> int:
    async with app.state.db.session() as session:
        stmt = select(func.count()).where(PluginMetric.plugin_id == plugin_id)
        return int((await session.execute(stmt)).scalar_one())


async def insert_documents(
    app: FastAPI, plugin_id: str, rows: Iterable[tuple[str, datetime, dict[str, Any]]]
) -> None:
    """Store ``(host, timestamp, document)`` rows as if the plugin had collected them."""
    samples = [metric_store.MetricSample(plugin_id, host, ts, data) for host, ts, data in rows]
    async with app.state.db.session() as session:
        await metric_store.insert_samples(session, samples)


async def eventually(
    check: Callable[[], Any], *, timeout: float = 5.0, message: str = "condition"
) -> None:
    """Poll ``check`` (sync or async) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{message} did not happen within {timeout}s")
        await asyncio.sleep(0.02)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is the JSON error ``status`` and return its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def error_locs(response: httpx.Response) -> set[tuple[str, ...]]:
    """The ``loc`` of every entry in a 422's ``details``, as tuples of strings."""
    error = error_of(response, 422)
    assert error["code"] == "invalid"
    details = error["details"]
    assert details, error
    for entry in details:
        assert isinstance(entry["msg"], str)
        assert entry["msg"]
    return {tuple(str(part) for part in entry["loc"]) for entry in details}


def xfail_on(request: pytest.FixtureRequest, app: FastAPI, dialect: str, reason: str) -> None:
    """Mark the running test as a strict expected failure on one database only."""
    if app.state.db.dialect == dialect:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# -- a plugin with a required secret -------------------------------------------------

MASK = "********"
SECRET = "hunter2-do-not-leak"


class VaultConfig(BaseModel):
    address: str = "http://vault.lan"
    token: SecretStr


class VaultPlugin(PluginBase):
    """A required top-level secret: the plain ``SecretStr`` case."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="vault", name="Vault", version="1.0.0", config_schema=VaultConfig)

    async def collect_data(self) -> dict[str, Any]:
        return {"sealed": 0}
