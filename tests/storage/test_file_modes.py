"""The data directory and every file the hub writes in it are private.

They hold token hashes, the credentials master key and plugin configs, so
other local users must not read them, whatever the umask the hub starts with.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from unity.app import create_app
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database

NO_ENTRY_POINTS = "unity.plugins.none-in-tests"


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    mask: int = request.param
    old = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(data_dir: Path) -> dict[str, int]:
    return {p.name: _mode(p) for p in data_dir.iterdir()}


async def _run_hub(data_dir: Path) -> None:
    """Start the hub on its default SQLite database, write through it, stop it."""
    settings = Settings(
        data_dir=data_dir, database_url="", autoenable=[], bootstrap_token=True, hostname="h"
    )
    app = create_app(settings, loader=PluginLoader([], group=NO_ENTRY_POINTS))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            assert (await client.get("/healthz")).status_code == 200
        # Files present while the hub runs (the WAL and shared-memory files).
        assert {"unity.db", "unity.db-wal", "unity.db-shm", "master.key"} <= set(
            os.listdir(data_dir)
        )
        assert set(_modes(data_dir).values()) == {0o600}, _modes(data_dir)


async def test_a_new_data_dir_is_private(tmp_path: Path, umask: int) -> None:
    data_dir = tmp_path / "state" / "unity"
    await _run_hub(data_dir)
    assert _mode(data_dir) == 0o700
    assert set(_modes(data_dir).values()) == {0o600}, _modes(data_dir)


async def test_a_loose_existing_data_dir_is_tightened_with_a_warning(
    tmp_path: Path, umask: int, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "unity"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    await _run_hub(data_dir)
    # As an older hub left them (an exposed master.key stops the hub instead:
    # it may have been copied, so fixing its mode would hide the problem).
    for path in data_dir.glob("unity.db*"):
        path.chmod(0o644)
    data_dir.chmod(0o755)
    caplog.clear()
    await _run_hub(data_dir)
    assert _mode(data_dir) == 0o700
    assert set(_modes(data_dir).values()) == {0o600}, _modes(data_dir)
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert f"{data_dir} was mode 0755, open to other users; it is now 0700" in warnings
    assert f"{data_dir / 'unity.db'} was mode 0644, open to other users; it is now 0600" in warnings


async def test_a_sqlite_file_outside_the_data_dir_is_private(tmp_path: Path, umask: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    db = Database(f"sqlite+aiosqlite:///{shared / 'hub.db'}")
    try:
        await db.upgrade()
        assert {"hub.db", "hub.db-wal", "hub.db-shm"} <= set(os.listdir(shared))
        assert set(_modes(shared).values()) == {0o600}, _modes(shared)
    finally:
        await db.dispose()
    # A directory the operator chose is theirs: the hub leaves its mode alone.
    assert _mode(shared) == 0o755
