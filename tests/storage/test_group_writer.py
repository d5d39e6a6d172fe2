"""The group-commit writer against the real app on SQLite and PostgreSQL.

Runs and batches that arrive while a group is being written share the next
transaction; every answer comes after the commit of its own item; one bad item
fails alone; a duplicate batch id within one group is answered ``duplicate``;
and what is queued when the hub stops is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support import sample_plugins

from unity.storage.db import Database
from unity.storage.models import BatchReceipt, PluginExecution, PluginMetric
from unity.storage.types import utcnow
from unity.storage.writer import RunWrite
from unity_sdk import PluginBase, PluginMetadata

ECHOES = [f"echo-{n}" for n in range(1, 5)]
METADATA = {
    "id": "pusher",
    "name": "Pusher",
    "version": "1.0.0",
    "metrics": [{"name": "load", "unit": "%"}],
    "default_interval": 10,
}
METRICS = "/api/plugins/v2/pusher/metrics"


def _echo(plugin_id: str) -> type[PluginBase]:
    metadata = PluginMetadata(id=plugin_id, name=plugin_id, version="1.0.0", description="echo")

    def get_metadata(self: PluginBase) -> PluginMetadata:
        return metadata

    async def collect_data(self: PluginBase) -> dict[str, Any]:
        return {"plugin": plugin_id}

    namespace = {"get_metadata": get_metadata, "collect_data": collect_data, "__module__": __name__}
    return type(plugin_id.replace("-", "_"), (PluginBase,), namespace)


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [*sample_plugins.ALL, *(_echo(p) for p in ECHOES)]


def _batch(name: str, start: int = 0, n: int = 3) -> dict[str, Any]:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "batch_id": f"batch-{name}",
        "samples": [
            {
                "host": "box",
                "timestamp": (base + timedelta(seconds=start + i)).isoformat(),
                "data": {"load": start + i},
            }
            for i in range(n)
        ],
    }


@pytest.fixture
async def key(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> str:
    enrollment = (await client.post("/api/enrollment-tokens", json={"max_uses": 1})).json()
    response = await anon.post(
        "/api/plugins/v2/register",
        json={"metadata": METADATA, "hostname": "box"},
        headers={"Authorization": f"Bearer {enrollment['token']}"},
    )
    assert response.status_code == 201, response.text
    value: str = response.json()["api_key"]
    # The key's first use is written down (outside the hot path); done here, before
    # any test holds the writes.
    first = await anon.post(METRICS, json=_batch("first", -100), headers=_auth(value))
    assert first.json() == {"stored": 3, "duplicate": False}
    return value


def _auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


class Commits:
    """The committed write transactions that stored executions, and which batches
    and runs each one held (recorded by SQLAlchemy events on the app's engine)."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine.sync_engine
        self.groups: list[set[str]] = []
        self.committed: set[str] = set()
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    def _statement(
        self, conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        if not statement.startswith("INSERT INTO plugin_executions"):
            return
        rows = parameters if many else [parameters]
        names = conn.info.setdefault("items", set())
        for row in rows:
            # A pushed batch's execution is named by its plugin; runs by theirs.
            values = row.values() if isinstance(row, dict) else row
            names.update(v for v in values if isinstance(v, str) and v in {"pusher", *ECHOES})

    def _commit(self, conn: Any) -> None:
        items = conn.info.pop("items", None)
        if items:
            self.groups.append(set(items))
            self.committed.update(items)


@pytest.fixture
def commits(db: Database) -> Any:
    watcher = Commits(db)
    yield watcher
    watcher.close()


@asynccontextmanager
async def writes_held(db: Database) -> AsyncIterator[None]:
    """Hold every write of the hot path until the block ends, so what is submitted
    meanwhile queues behind the one group already taken (one writer: on
    PostgreSQL a second one would take the queue into a group of its own)."""
    db.group_writer.writers = 1
    if db.is_sqlite:
        async with db._write_lock:  # type: ignore[union-attr]
            yield
        return
    engine = create_async_engine(db.url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("LOCK TABLE plugin_executions IN SHARE MODE"))
            yield
            await conn.rollback()
    finally:
        await engine.dispose()


async def _queued(db: Database, count: int) -> None:
    for _ in range(2000):
        if db.group_writer.pending >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {db.group_writer.pending} of {count} items queued")


async def _taken(db: Database, items: int) -> None:
    """Wait until ``items`` items in all were taken into groups."""
    for _ in range(2000):
        if db.group_writer.items >= items:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {db.group_writer.items} of {items} items taken")


async def _count(db: Database, model: Any, **where: Any) -> int:
    async with db.session() as session:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int(await session.scalar(stmt) or 0)


def _after(
    commits: Commits, name: str, call: Awaitable[httpx.Response]
) -> Callable[[], Awaitable[tuple[httpx.Response, bool]]]:
    async def answered() -> tuple[httpx.Response, bool]:
        response = await call
        # Checked the moment the answer arrives: its item was committed before it.
        return response, name in commits.committed

    return answered


async def test_concurrent_batches_and_runs_share_transactions_and_answer_after_commit(
    db: Database, client: httpx.AsyncClient, anon: httpx.AsyncClient, key: str, commits: Commits
) -> None:
    commits.groups.clear()
    headers = _auth(key)
    async with writes_held(db):
        first = _after(commits, "echo-1", client.post("/api/plugins/v2/echo-1/execute"))
        held = asyncio.create_task(first())
        await _taken(db, db.group_writer.items + 1)  # the first group, held
        calls = [
            _after(commits, "pusher", anon.post(METRICS, json=_batch(f"b-{n}", n), headers=headers))
            for n in range(0, 60, 10)
        ]
        calls += [
            _after(commits, p, client.post(f"/api/plugins/v2/{p}/execute")) for p in ECHOES[1:]
        ]
        rest = [asyncio.create_task(call()) for call in calls]
        await _queued(db, len(rest))
        assert not held.done()
    answers = [await held, *[await task for task in rest]]
    for response, committed_before in answers:
        assert response.status_code == 200, response.text
        assert committed_before
    assert [r.json()["stored"] for r, _ in answers[1:7]] == [3] * 6
    # Ten items, two transactions: the held one and the one of everything queued.
    assert len(commits.groups) == 2
    assert commits.groups[1] == {"pusher", *ECHOES[1:]}
    assert await _count(db, PluginMetric, plugin_id="pusher") == 3 + 18
    assert await _count(db, BatchReceipt) == 1 + 6
    for plugin_id in ECHOES:
        assert await _count(db, PluginExecution, plugin_id=plugin_id) == 1


async def test_a_duplicate_batch_id_in_one_group_is_answered_duplicate(
    db: Database, anon: httpx.AsyncClient, key: str
) -> None:
    headers = _auth(key)
    async with writes_held(db):
        held = asyncio.create_task(anon.post(METRICS, json=_batch("held"), headers=headers))
        await _taken(db, db.group_writer.items + 1)
        copies = [
            asyncio.create_task(anon.post(METRICS, json=_batch("twice", 100), headers=headers))
            for _ in range(3)
        ]
        other = asyncio.create_task(anon.post(METRICS, json=_batch("once", 200), headers=headers))
        await _queued(db, 4)
    assert (await held).json() == {"stored": 3, "duplicate": False}
    answers = sorted([tuple((await c).json().values()) for c in copies])
    assert answers == [(0, True), (0, True), (3, False)]
    assert (await other).json() == {"stored": 3, "duplicate": False}
    assert await _count(db, PluginMetric, plugin_id="pusher") == 3 + 9
    assert await _count(db, BatchReceipt) == 1 + 3
    assert await _count(db, PluginExecution, plugin_id="pusher") == 1 + 3


async def test_a_bad_item_fails_alone_and_its_neighbours_are_stored(
    db: Database, anon: httpx.AsyncClient, key: str
) -> None:
    """A run of a plugin deleted meanwhile breaks a foreign key: the group is
    written again item by item, and only that run is refused."""
    headers = _auth(key)
    now = utcnow()
    gone = RunWrite(
        "deleted-meanwhile",
        execution={"started_at": now, "completed_at": now, "status": "success", "duration_ms": 1.0},
        documents=[("box", now, {"v": 1})],
        plugin={"last_run_at": now},
    )
    async with writes_held(db):
        held = asyncio.create_task(anon.post(METRICS, json=_batch("held"), headers=headers))
        await _taken(db, db.group_writer.items + 1)
        before = asyncio.create_task(anon.post(METRICS, json=_batch("before", 10), headers=headers))
        await _queued(db, 1)
        bad = asyncio.create_task(db.group_writer.submit(gone))
        await _queued(db, 2)
        after = asyncio.create_task(anon.post(METRICS, json=_batch("after", 20), headers=headers))
        await _queued(db, 3)
    for task in (held, before, after):
        response = await task
        assert response.json() == {"stored": 3, "duplicate": False}, response.text
    with pytest.raises(IntegrityError):
        await bad
    assert await _count(db, PluginMetric) == 3 + 9
    assert await _count(db, PluginExecution, plugin_id="deleted-meanwhile") == 0
    assert await _count(db, BatchReceipt) == 1 + 3


async def test_what_is_queued_when_the_hub_stops_is_written(settings: Any, loader: Any) -> None:
    from asgi_lifespan import LifespanManager

    from unity.app import create_app

    application = create_app(settings, loader=loader)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        db: Database = application.state.db
        now = utcnow()
        submitted = []
        async with writes_held(db):
            for n in range(5):
                item = RunWrite(
                    "counter",
                    execution={
                        "started_at": now + timedelta(seconds=n),
                        "completed_at": now,
                        "status": "success",
                        "duration_ms": 1.0,
                    },
                    documents=[("box", now + timedelta(seconds=n), {"n": n})],
                )
                submitted.append(asyncio.create_task(db.group_writer.submit(item)))
                if n == 0:  # the first is taken into a group, the others queue behind it
                    await _taken(db, db.group_writer.items + 1)
            await _queued(db, 4)
        # The app stops with items still queued: disposing the database writes them first.
    assert all(task.done() and task.exception() is None for task in submitted)
    check = Database(settings.effective_database_url)
    try:
        assert await _count(check, PluginMetric, plugin_id="counter") == 5
    finally:
        await check.dispose()
