"""The anchors the ingest benchmark compares the hub to, measured in the same run.

- Raw driver inserts of the rows the hub stored, 100 rows per transaction as
  the hub's batches: ``aiosqlite`` ``executemany`` (with the hub's pragmas,
  WAL and ``synchronous=FULL``) and ``asyncpg`` ``copy_records_to_table``.
  The rows are built before the clock starts (documents already JSON text):
  this is the storage floor, without SQLAlchemy.
- ``app``: a FastAPI app whose ``POST /points`` validates a batch of points
  (the same body the hub gets) and stores nothing, run by uvicorn like the
  hub: the floor of what HTTP, JSON and validation cost per batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC
from itertools import islice
from typing import Any

import aiosqlite
import asyncpg
from fastapi import FastAPI
from pydantic import AwareDatetime, BaseModel

from unity.storage.db import Database

__all__ = ["ROWS_PER_TRANSACTION", "app", "raw_driver"]

ROWS_PER_TRANSACTION = 100
_COLUMNS = ("plugin_id", "host", "timestamp", "data")
_SQLITE_INSERT = "INSERT INTO plugin_metrics (plugin_id, host, timestamp, data) VALUES (?, ?, ?, ?)"


class Point(BaseModel):
    host: str
    timestamp: AwareDatetime
    data: dict[str, Any]


class Points(BaseModel):
    batch_id: str
    samples: list[Point]


app = FastAPI()


@app.post("/points")
async def points(batch: Points) -> dict[str, Any]:
    """Validated, then dropped."""
    return {"stored": len(batch.samples), "duplicate": False}


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    source = iter(rows)
    while chunk := list(islice(source, size)):
        yield chunk


def _sqlite_row(row: dict[str, Any]) -> tuple[Any, ...]:
    # As SQLAlchemy stores a UTC timestamp on SQLite: naive, microseconds.
    stamp = row["timestamp"].astimezone(UTC).replace(tzinfo=None)
    text = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    return (row["plugin_id"], row["host"], text, json.dumps(row["data"]))


def _postgres_row(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["plugin_id"], row["host"], row["timestamp"], json.dumps(row["data"]))


async def _sqlite(path: str, chunks: list[list[tuple[Any, ...]]]) -> float:
    async with aiosqlite.connect(path) as conn:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000"):
            await conn.execute(f"PRAGMA {pragma}")
        clock = time.perf_counter()
        for chunk in chunks:
            await conn.executemany(_SQLITE_INSERT, chunk)
            await conn.commit()
        return time.perf_counter() - clock


async def _postgres(dsn: str, chunks: list[list[tuple[Any, ...]]]) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        clock = time.perf_counter()
        for chunk in chunks:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "plugin_metrics", records=chunk, columns=list(_COLUMNS)
                )
        return time.perf_counter() - clock
    finally:
        await conn.close()


async def raw_driver(db: Database, rows: Iterable[dict[str, Any]]) -> tuple[str, int, float]:
    """Insert ``rows`` with the bare driver, ROWS_PER_TRANSACTION per transaction:
    (what was measured, rows, seconds of the transactions)."""
    if db.is_sqlite:
        chunks = [[_sqlite_row(r) for r in c] for c in _chunks(rows, ROWS_PER_TRANSACTION)]
        assert db.url.database is not None
        seconds = await _sqlite(db.url.database, chunks)
        what = "aiosqlite executemany"
    else:
        chunks = [[_postgres_row(r) for r in c] for c in _chunks(rows, ROWS_PER_TRANSACTION)]
        dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        seconds = await _postgres(dsn, chunks)
        what = "asyncpg copy_records_to_table"
    return what, sum(len(c) for c in chunks), seconds
