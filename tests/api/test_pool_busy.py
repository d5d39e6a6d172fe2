"""A request that finds every pooled connection in use is back-pressure, not an
outage: 503 "database busy" with Retry-After, one warning (never an ERROR),
and the database is not marked as down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

import unity.storage.db as db_module
from unity.app import create_app
from unity.auth.tokens import Scope, create_token
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database

POOL_TIMEOUT = 0.2


@pytest.fixture
async def tiny_pool_app(
    settings: Settings, loader: PluginLoader, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    """The real app on a real database, with a pool of one connection."""
    real = db_module.create_async_engine

    def one_connection(url: Any, **kwargs: Any) -> Any:
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT)
        return real(url, **kwargs)

    monkeypatch.setattr(db_module, "create_async_engine", one_connection)
    application = create_app(settings, loader=loader)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def test_no_free_connection_answers_busy_not_unavailable(
    tiny_pool_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    db: Database = tiny_pool_app.state.db
    async with db.session() as session:
        issued = await create_token(session, name="ops", scope=Scope.ADMIN)
    transport = httpx.ASGITransport(app=tiny_pool_app)
    headers = {"Authorization": f"Bearer {issued.value}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as c:
        caplog.set_level(logging.WARNING)
        async with db.engine.connect():  # the only connection, held
            first = await c.get("/api/plugins/v2")
            second = await c.get("/api/plugins/v2")
            ready = await c.get("/readyz")
        assert first.status_code == 503
        assert first.json()["error"]["message"] == "database busy: no free connection, retry"
        assert first.headers["Retry-After"] == "1"
        assert second.status_code == 503
        # Not ready for traffic, and said why: busy, not down.
        assert ready.status_code == 503
        assert ready.json()["error"]["message"] == "database busy: no free connection, retry"
        assert not db.outage.active
        busy = [r for r in caplog.records if "database busy" in r.getMessage()]
        assert [r.levelno for r in busy] == [logging.WARNING]  # rate-limited: one line
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # The connection back in the pool, the same request is served.
        assert (await c.get("/api/plugins/v2")).status_code == 200
