"""The database handle: SQLite durability, and how it tells an outage from a bug."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from tests.support.processes import free_port

from unity.storage.db import Database, DatabaseUnavailableError, is_unavailable


async def test_sqlite_commits_reach_the_disk_before_they_are_acknowledged(
    tmp_path: Path,
) -> None:
    """WAL with synchronous=FULL: a commit survives a power loss, not only a crash."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'unity.db'}")
    try:
        async with db.session() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await session.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
    finally:
        await db.dispose()


async def test_an_unreachable_database_is_an_outage_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on a fresh free port: the connection is refused.
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/unity")
    try:
        with caplog.at_level(logging.INFO, logger="unity.storage.db"):
            for _ in range(3):
                with pytest.raises(DatabaseUnavailableError) as failure:
                    await db.ping()
                assert is_unavailable(failure.value)
        assert db.outage.active
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert "database unavailable" in caplog.records[0].getMessage()
    finally:
        await db.dispose()


async def test_a_working_database_ends_the_outage(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(database_url)
    try:
        db.outage.failed(DatabaseUnavailableError("gone"))
        with caplog.at_level(logging.INFO, logger="unity.storage.db"):
            await db.ping()
        assert not db.outage.active
        assert "database available again" in caplog.text
    finally:
        await db.dispose()


async def test_bad_data_is_not_an_outage(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.session() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        with pytest.raises(IntegrityError) as failure:
            async with db.session() as session:
                await session.execute(text("INSERT INTO t VALUES (1), (1)"))
        assert not is_unavailable(failure.value)
        assert not db.outage.active
    finally:
        await db.dispose()
