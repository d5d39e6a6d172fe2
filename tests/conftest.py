"""Fixtures shared by the whole suite: settings, databases (SQLite and
PostgreSQL), a running app over ASGI, and tokens.

PostgreSQL comes from ``UNITY_TEST_POSTGRES_URL`` (default: the local server).
Without it the PostgreSQL half of each storage test skips -- except under CI,
where a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import sample_plugins
from tests.support.postgres import PrivatePostgres, postgres_binaries
from unity.app import create_app
from unity.auth.tokens import Scope, create_token
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database

POSTGRES_URL = os.environ.get(
    "UNITY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
NO_ENTRY_POINTS = "unity.plugins.none-in-tests"


def _postgres_available() -> str | None:
    async def probe() -> None:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL: {problem}")
        pytest.skip(problem)
    name = f"unity_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs twice: embedded SQLite, then PostgreSQL (clean schema)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}"
        return
    url: str = request.getfixturevalue("postgres_server_url")

    async def reset() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())
    yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        hostname="test-host",
        autoenable=[],
        bootstrap_token=False,
        scheduler_jitter=0.0,
        retention_check_seconds=3600,
        # The hub scanning its own machine would mark the proposals tests write on its
        # host as gone; tests/plugins/test_hub_discovery.py turns it on.
        discovery_seconds=0,
        # Tests present many bad credentials from one address on purpose; the
        # failed-authentication limits have their own tests (tests/api/test_rate_limit.py).
        auth_failure_burst=1_000_000,
        auth_failure_limit=1_000_000,
    )


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    """The plugins the test app loads; override in a module to change them."""
    return list(sample_plugins.ALL)


@pytest.fixture
def loader(plugin_classes: list[type[Any]]) -> PluginLoader:
    return PluginLoader(plugin_classes, group=NO_ENTRY_POINTS)


@pytest.fixture
async def app(settings: Settings, loader: PluginLoader) -> AsyncIterator[FastAPI]:
    application = create_app(settings, loader=loader)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture
def make_token(app: FastAPI) -> Callable[[Scope], Any]:
    async def make(scope: Scope = Scope.ADMIN) -> str:
        async with app.state.db.session() as session:
            issued = await create_token(session, name=f"test-{scope.value}", scope=scope)
        return issued.value

    return make


@pytest.fixture
async def admin_token(make_token: Callable[[Scope], Any]) -> str:
    token: str = await make_token(Scope.ADMIN)
    return token


@pytest.fixture
async def read_token(make_token: Callable[[Scope], Any]) -> str:
    token: str = await make_token(Scope.READ)
    return token


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client


@pytest.fixture
async def client(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An API client with an admin token."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as c:
        yield c


@pytest.fixture
async def reader(app: FastAPI, read_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An API client with a read-only token."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {read_token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as c:
        yield c


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own, to stop and start (outage tests)."""
    binaries = postgres_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("CI requires the PostgreSQL server binaries (initdb, pg_ctl)")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PrivatePostgres(binaries)
    server.start()
    yield server
    server.remove()
