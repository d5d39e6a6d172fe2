"""What every benchmark shares: fresh databases, timing helpers and result tables.

A benchmark is a module with ``NAME``, ``SUMMARY`` and ``async def run(ctx)``
returning :class:`Table` objects. Databases are never shared: each call of
:func:`fresh_database` yields an empty SQLite file in a new temporary folder or
a new PostgreSQL database ``unity_bench_<random>`` that is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from unity.settings import Settings
from unity.storage.db import Database

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"


@dataclass
class Table:
    """One printed table; ``rows`` keep raw numbers so the JSON file has them too."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "notes": self.notes,
        }


@dataclass
class Context:
    """The options of this run, shared by every benchmark."""

    quick: bool
    postgres_url: str | None  # the server to create databases on; None: SQLite only
    log: Callable[[str], None] = print

    @property
    def dialects(self) -> list[str]:
        return [SQLITE, POSTGRESQL] if self.postgres_url else [SQLITE]


class BenchmarkError(AssertionError):
    """The hub and its baseline disagree: the numbers would be meaningless."""


def bench_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Hub settings for a benchmark: no token, no built-in autoenable, fixed host name."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "hostname": "bench-host",
        "autoenable": [],
        "bootstrap_token": False,
        "scheduler_jitter": 0.1,
        "retention_check_seconds": 3600,
    }
    values.update(overrides)
    return Settings(**values)


async def _admin(server_url: str, sql: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def postgres_version(server_url: str, timeout: float = 5.0) -> str:
    """The server's version; raises when it cannot be reached within ``timeout``."""

    async def ask() -> str:
        engine = create_async_engine(server_url)
        try:
            async with engine.connect() as conn:
                return str((await conn.execute(text("SHOW server_version"))).scalar_one())
        finally:
            await engine.dispose()

    return await asyncio.wait_for(ask(), timeout)


@asynccontextmanager
async def fresh_database(ctx: Context, dialect: str) -> AsyncIterator[tuple[Database, Path]]:
    """An empty, migrated database of ``dialect`` and a scratch folder; both removed after."""
    with tempfile.TemporaryDirectory(prefix="unity-bench-") as scratch:
        folder = Path(scratch)
        if dialect == SQLITE:
            db = Database(f"sqlite+aiosqlite:///{folder / 'unity.db'}")
            try:
                await db.upgrade()
                yield db, folder
            finally:
                await db.dispose()
            return
        assert ctx.postgres_url is not None
        name = f"unity_bench_{uuid.uuid4().hex[:10]}"
        server = make_url(ctx.postgres_url)
        await _admin(ctx.postgres_url, f'CREATE DATABASE "{name}"')
        try:
            db = Database(server.set(database=name).render_as_string(hide_password=False))
            try:
                await db.upgrade()
                yield db, folder
            finally:
                await db.dispose()
        finally:
            await _admin(ctx.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Wall seconds of one awaited call, and its result."""
    clock = time.perf_counter()
    result = await call()
    return time.perf_counter() - clock, result


def median_ms(seconds: Sequence[float]) -> float:
    return statistics.median(seconds) * 1000


class ErrorCounter(logging.Handler):
    """Counts hub log records at ERROR and above, so silent failures show in the table."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()

    def __enter__(self) -> ErrorCounter:
        logging.getLogger("unity").addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger("unity").removeHandler(self)


def machine_info(postgres: str | None) -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "postgresql": postgres or "not used (unreachable or disabled)",
        "load_average_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
