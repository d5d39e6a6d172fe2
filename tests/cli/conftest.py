"""Fixtures for the CLI: a runner with an isolated environment, and a real hub
served by uvicorn on a free loopback port in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from unity.app import create_app
from unity.auth.tokens import Scope, create_token
from unity.cli.main import app
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database

Invoke = Callable[..., Result]


@dataclass(frozen=True)
class Hub:
    url: str
    port: int
    admin_token: str
    read_token: str


@pytest.fixture
def cli(settings: Settings) -> Invoke:
    """Run ``unity ...`` in-process against the test settings' data dir and database.

    ``env`` adds or (with None) removes variables. UNITY_URL/UNITY_TOKEN of the
    calling shell are removed; a wide COLUMNS keeps tables from wrapping.
    """
    runner = CliRunner()
    base_env: dict[str, str | None] = {
        "UNITY_DATA_DIR": str(settings.data_dir),
        "UNITY_DATABASE_URL": settings.database_url,
        "UNITY_CONFIG_FILE": None,
        "UNITY_URL": None,
        "UNITY_TOKEN": None,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }

    def invoke(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
        return runner.invoke(app, list(args), env={**base_env, **(env or {})})

    return invoke


async def _issue_tokens(url: str) -> tuple[str, str]:
    db = Database(url)
    try:
        async with db.session() as session:
            admin = await create_token(session, name="test-admin", scope=Scope.ADMIN)
            read = await create_token(session, name="test-read", scope=Scope.READ)
    finally:
        await db.dispose()
    return admin.value, read.value


@pytest.fixture
def hub(settings: Settings, loader: PluginLoader) -> Iterator[Hub]:
    """A real hub listening on 127.0.0.1, plus an admin and a read token.

    It loads the sample plugins (override ``plugin_classes`` to change them).
    """
    application = create_app(settings, loader=loader)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the hub did not start")
            time.sleep(0.05)
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        admin, read = asyncio.run(_issue_tokens(settings.effective_database_url))
        yield Hub(url=url, port=port, admin_token=admin, read_token=read)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
