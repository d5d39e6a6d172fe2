"""The group-commit writer: finished runs and accepted batches, many per transaction.

Every scheduled run and every accepted metric batch is one item. Items queue in
memory and a writer task of the database (started when the first item
arrives, ended when the queue is empty: an idle hub runs nothing) writes
everything queued in one transaction, one ``executemany`` per table, then resolves each item's
future. Nothing is acknowledged before it is durable: whoever submitted an item
awaits its future, and it resolves after the commit.

What a group writes, in this order and with statements built once:

1. the state of the batches' plugins, locked in id order (``FOR NO KEY
   UPDATE`` on PostgreSQL: hubs sharing the database take turns per plugin, in
   one order, so their groups never deadlock), and the batch receipts
   (``INSERT ... ON CONFLICT DO NOTHING RETURNING``: those not returned are
   duplicates);
2. each item's rows, decided by the item itself (:meth:`WriteItem.stage`, which
   may refuse its item alone: a duplicate, a plugin gone or registered again);
3. ``plugin_metrics``, the ``plugin_latest`` upsert (the newest document per
   plugin and host of the group), ``plugin_executions``, the ``plugins`` rows,
   ``plugin_events``, and the receipts of refused batches removed.

A group that fails for any other reason than an outage (a run whose plugin was
deleted meanwhile breaks a foreign key, a deadlock) is written again item by
item, each in its own transaction: the failing item gets its own error and the
others are stored. An outage (:func:`~unity.storage.db.is_unavailable`) fails
every item of the group with the error the API answers 503 to; the next items
start a new group, so the writer recovers with the database.

On PostgreSQL up to :data:`POSTGRES_WRITERS` groups are written at once, each
on its own connection (their plugin rows locked in one order, their receipts
claimed by the unique key: a batch id in two groups is stored by the first to
commit). A group holds at most :data:`GROUP_ITEMS` items and :data:`GROUP_ROWS` rows; at
most :data:`QUEUED_ROWS` rows wait or are being written, beyond which
:meth:`GroupWriter.submit` waits for room (back-pressure). Two batches with
the same id never share a group: the second waits for the next one, where its
receipt makes it a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

from sqlalchemy import Insert, Update, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from unity.storage.batches import PluginRow, PushedState
from unity.storage.db import Database, is_unavailable
from unity.storage.dialects import dialect_insert
from unity.storage.metrics import latest_upsert
from unity.storage.models import (
    BatchReceipt,
    LatestMetric,
    Plugin,
    PluginEvent,
    PluginExecution,
    PluginMetric,
    table_of,
)

__all__ = [
    "GROUP_ITEMS",
    "GROUP_ROWS",
    "POSTGRES_WRITERS",
    "QUEUED_ROWS",
    "GroupWriter",
    "RunWrite",
    "Staged",
    "WriteItem",
]

log = logging.getLogger(__name__)

# The most items and rows (documents and samples) one transaction writes.
GROUP_ITEMS = 500
GROUP_ROWS = 10_000
# The most rows waiting or being written; submitters wait beyond it.
QUEUED_ROWS = 50_000
# Groups written at once: one on SQLite (one writer at a time anyway); on
# PostgreSQL a few, so the server works on one while the hub prepares the next.
POSTGRES_WRITERS = 3

T = TypeVar("T")


_PLUGINS = table_of(Plugin)
_METRICS = table_of(PluginMetric)
_LATEST = table_of(LatestMetric)
_EXECUTIONS = table_of(PluginExecution)
_EVENTS = table_of(PluginEvent)
_RECEIPTS = table_of(BatchReceipt)

_INSERT_METRICS = insert(_METRICS)
_INSERT_EXECUTIONS = insert(_EXECUTIONS)
_INSERT_EVENTS = insert(_EVENTS)
# The state of the batches' plugins, locked in id order (PostgreSQL) to the commit.
_LOCK = (
    select(
        _PLUGINS.c.id,
        _PLUGINS.c.enabled,
        _PLUGINS.c.state,
        _PLUGINS.c.health_status,
        _PLUGINS.c.last_seen_at,
        _PLUGINS.c.config,
        _PLUGINS.c.external,
        _PLUGINS.c["metadata"],
        _PLUGINS.c.host_id,
    )
    .where(_PLUGINS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_PLUGINS.c.id)
    .with_for_update(key_share=True)
)
_PUSH = (
    update(_PLUGINS)
    .where(_PLUGINS.c.id == bindparam("p_plugin_id"))
    .values(
        last_seen_at=bindparam("p_at"),
        last_run_at=bindparam("p_newest"),
        last_success_at=bindparam("p_at"),
        run_count=_PLUGINS.c.run_count + 1,
        state=bindparam("p_state"),
        consecutive_failures=0,
        updated_at=bindparam("p_at"),
    )
)
_UNCLAIM = delete(_RECEIPTS).where(
    _RECEIPTS.c.plugin_id == bindparam("u_plugin_id"),
    _RECEIPTS.c.batch_id == bindparam("u_batch_id"),
)


@cache
def _claim(dialect: str) -> Insert:
    return (
        dialect_insert(dialect)(_RECEIPTS)
        .on_conflict_do_nothing()
        .returning(_RECEIPTS.c.plugin_id, _RECEIPTS.c.batch_id)
    )


@cache
def _run_update(columns: tuple[str, ...]) -> Update:
    """The ``plugins`` update of a run setting ``columns`` (one statement per set)."""
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=_PLUGINS.c[name].type) for name in columns
    }
    return (
        update(_PLUGINS)
        .where(_PLUGINS.c.id == bindparam("v_plugin_id"))
        .values(run_count=_PLUGINS.c.run_count + 1, **values)
    )


# -- what a group writes ------------------------------------------------------------------


@dataclass
class Staged(Generic[T]):
    """The rows one item adds to its group, and its answer once they are committed."""

    result: T
    metrics: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # The plugin's row after a run: column -> value (run_count is counted up).
    run_update: tuple[str, dict[str, Any]] | None = None
    # The plugin's row after a batch: (plugin id, received at, newest sample, state).
    push: tuple[str, datetime, datetime, str] | None = None

    def sample(self, plugin_id: str, host: str, timestamp: datetime, data: Any) -> None:
        self.metrics.append(
            {"plugin_id": plugin_id, "host": host, "timestamp": timestamp, "data": data}
        )

    def execution(
        self,
        *,
        plugin_id: str,
        started_at: datetime,
        completed_at: datetime | None,
        status: str,
        duration_ms: float | None,
        error: str | None = None,
        metrics_count: int = 0,
        trigger: str = "schedule",
    ) -> None:
        self.executions.append(
            {
                "plugin_id": plugin_id,
                "started_at": started_at,
                "completed_at": completed_at,
                "status": status,
                "duration_ms": duration_ms,
                "error": error,
                "metrics_count": metrics_count,
                "trigger": trigger,
            }
        )

    def event(
        self, *, plugin_id: str, at: datetime, previous: str, current: str, message: str = ""
    ) -> None:
        self.events.append(
            {
                "plugin_id": plugin_id,
                "at": at,
                "previous": previous,
                "current": current,
                "message": message,
            }
        )


class Group:
    """What one transaction knows while its items are staged."""

    def __init__(self, states: dict[str, PushedState], claimed: set[tuple[str, str]]) -> None:
        # The batches' plugins as locked, moved on by each batch staged before.
        self.states = states
        self.claimed = claimed


class WriteItem(ABC, Generic[T]):
    """One thing to store. ``rows`` bounds groups and the queue; ``receipt`` is the
    (plugin id, batch id) a batch claims; ``locks`` the plugin whose row
    :meth:`stage` needs (a batch's, locked for the group)."""

    rows: int = 1
    receipt: tuple[str, str] | None = None
    locks: str | None = None
    received_at: datetime | None = None

    @abstractmethod
    def stage(self, group: Group) -> Staged[T]:
        """The rows this item writes and its answer; raising refuses it alone."""


@dataclass
class RunWrite(WriteItem[None]):
    """A plugin's run (or skipped tick): its execution row, documents, the plugin's
    run state (``plugin`` columns; None leaves the row) and a state change."""

    plugin_id: str
    execution: dict[str, Any]
    documents: Sequence[tuple[str, datetime, Any]] = ()
    plugin: dict[str, Any] | None = None
    event: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.rows = max(1, len(self.documents))

    def stage(self, group: Group) -> Staged[None]:
        staged: Staged[None] = Staged(None)
        staged.execution(plugin_id=self.plugin_id, **self.execution)
        for host, timestamp, data in self.documents:
            staged.sample(self.plugin_id, host, timestamp, data)
        if self.plugin is not None:
            staged.run_update = (self.plugin_id, self.plugin)
        if self.event is not None:
            staged.event(plugin_id=self.plugin_id, **self.event)
        return staged


@dataclass
class _Pending:
    item: WriteItem[Any]
    future: asyncio.Future[Any]


async def _lock(connection: AsyncConnection, plugin_ids: Iterable[str]) -> dict[str, PushedState]:
    ids = sorted(set(plugin_ids))
    if not ids:
        return {}
    rows = (await connection.execute(_LOCK, {"ids": ids})).all()
    return {
        row[0]: PushedState(
            bool(row[1]),
            row[2],
            row[3],
            row[4],
            row[5] or {},
            PluginRow(bool(row[6]), row[7], row[8]),
        )
        for row in rows
    }


async def _claim_receipts(
    connection: AsyncConnection, receipts: list[tuple[str, str, datetime, int]]
) -> set[tuple[str, str]]:
    if not receipts:
        return set()
    params = [
        {"plugin_id": p, "batch_id": b, "received_at": at, "samples": n}
        for p, b, at, n in sorted(receipts)
    ]
    result = await connection.execute(_claim(connection.dialect.name), params)
    return {(row[0], row[1]) for row in result.all()}


async def _write_group(connection: AsyncConnection, group: list[_Pending]) -> list[Any]:
    """Stage and write ``group`` in the caller's transaction; each item's answer or
    the exception refusing it, in order."""
    items = [p.item for p in group]
    states = await _lock(connection, (i.locks for i in items if i.locks is not None))
    receipts = []
    for item in items:
        if item.receipt is not None and item.receipt[0] in states:
            assert item.received_at is not None
            receipts.append((*item.receipt, item.received_at, item.rows))
    claimed = await _claim_receipts(connection, receipts)
    context = Group(states, claimed)
    outcomes: list[Any] = []
    metrics: list[dict[str, Any]] = []
    executions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    runs: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    pushes: list[dict[str, Any]] = []
    unclaim: list[dict[str, str]] = []
    for item in items:
        try:
            staged = item.stage(context)
        except Exception as exc:
            outcomes.append(exc)
            if item.receipt is not None and item.receipt in claimed:
                unclaim.append({"u_plugin_id": item.receipt[0], "u_batch_id": item.receipt[1]})
            continue
        outcomes.append(staged.result)
        metrics.extend(staged.metrics)
        executions.extend(staged.executions)
        events.extend(staged.events)
        if staged.run_update is not None:
            plugin_id, values = staged.run_update
            columns = tuple(sorted(values))
            row = {f"v_{name}": values[name] for name in columns}
            row["v_plugin_id"] = plugin_id
            runs.setdefault(columns, []).append(row)
        if staged.push is not None:
            plugin_id, at, last_run_at, state = staged.push
            pushes.append(
                {"p_plugin_id": plugin_id, "p_at": at, "p_newest": last_run_at, "p_state": state}
            )
            found = states[plugin_id]
            states[plugin_id] = replace(found, state=state, last_seen_at=at)
    dialect = connection.dialect.name
    if metrics:
        await connection.execute(_INSERT_METRICS, metrics)
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in metrics:
            key = (row["plugin_id"], row["host"])
            if key not in newest or row["timestamp"] >= newest[key]["timestamp"]:
                newest[key] = row
        # In key order: hubs sharing PostgreSQL lock latest rows in one order.
        latest = [newest[key] for key in sorted(newest)]
        await connection.execute(latest_upsert(dialect), latest)
    if executions:
        await connection.execute(_INSERT_EXECUTIONS, executions)
    for columns, rows in runs.items():
        rows.sort(key=lambda row: str(row["v_plugin_id"]))
        await connection.execute(_run_update(columns), rows)
    if pushes:
        await connection.execute(_PUSH, pushes)
    if events:
        await connection.execute(_INSERT_EVENTS, events)
    if unclaim:
        await connection.execute(_UNCLAIM, unclaim)
    return outcomes


# -- the queue and its writer -----------------------------------------------------------


class GroupWriter:
    """The queue of one database and the task draining it (see the module)."""

    def __init__(
        self,
        db: Database,
        *,
        group_items: int = GROUP_ITEMS,
        group_rows: int = GROUP_ROWS,
        queued_rows: int = QUEUED_ROWS,
    ) -> None:
        self.db = db
        self.group_items = group_items
        self.group_rows = group_rows
        self.queued_rows = queued_rows
        self._queue: deque[_Pending] = deque()
        self._rows = 0  # queued or being written
        self._room: deque[asyncio.Future[None]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self.writers = 1 if db.is_sqlite else POSTGRES_WRITERS
        # Counted for tests and benchmarks: groups written, items in them.
        self.groups = 0
        self.items = 0

    @property
    def pending(self) -> int:
        """Items queued and not yet taken into a group."""
        return len(self._queue)

    async def submit(self, item: WriteItem[T]) -> T:
        """Queue ``item`` and wait for its commit; its answer, or why it was refused.

        A submitter cancelled while waiting does not take its item back: it is
        written all the same."""
        loop = asyncio.get_running_loop()
        while self._rows and self._rows + item.rows > self.queued_rows:
            waiter: asyncio.Future[None] = loop.create_future()
            self._room.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._room:
                    self._room.remove(waiter)
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Pending(item, future))
        self._rows += item.rows
        if len(self._tasks) < self.writers:
            task = loop.create_task(self._drain(), name="group-writer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def close(self) -> None:
        """Wait until everything queued is written (the hub is stopping)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _take(self) -> list[_Pending]:
        """The next group: queued items in order, up to the bounds; a second batch
        with the same id waits at the head of the queue for the next group."""
        group: list[_Pending] = []
        deferred: list[_Pending] = []
        receipts: set[tuple[str, str]] = set()
        rows = 0
        while self._queue and len(group) < self.group_items:
            pending = self._queue[0]
            if group and rows + pending.item.rows > self.group_rows:
                break
            self._queue.popleft()
            receipt = pending.item.receipt
            if receipt is not None:
                if receipt in receipts:
                    deferred.append(pending)
                    continue
                receipts.add(receipt)
            group.append(pending)
            rows += pending.item.rows
        self._queue.extendleft(reversed(deferred))
        return group

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = self._take()
                try:
                    await self._write(group)
                finally:
                    self._rows -= sum(p.item.rows for p in group)
                    self._make_room()
        except BaseException as exc:
            # Cancelled with the loop: nobody may wait forever.
            for pending in self._queue:
                _settle(pending.future, exc=exc)
            self._queue.clear()
            raise
        finally:
            # At once, not in a done callback: an item queued from now on must
            # find room for a writer, or it would wait for nobody.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    def _make_room(self) -> None:
        while self._room and (not self._rows or self._rows < self.queued_rows):
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _write(self, group: list[_Pending]) -> None:
        self.groups += 1
        self.items += len(group)
        try:
            await self._commit(group)
        except asyncio.CancelledError as exc:
            for pending in group:
                _settle(pending.future, exc=exc)
            raise
        except Exception as exc:
            if is_unavailable(exc) or len(group) == 1:
                for pending in group:
                    _settle(pending.future, exc=exc)
                return
            log.debug("group of %d failed (%s); writing its items one by one", len(group), exc)
            await self._one_by_one(group)

    async def _one_by_one(self, group: list[_Pending]) -> None:
        for index, pending in enumerate(group):
            try:
                await self._commit([pending])
            except Exception as exc:
                if is_unavailable(exc):
                    for rest in group[index:]:
                        _settle(rest.future, exc=exc)
                    return
                _settle(pending.future, exc=exc)

    async def _commit(self, group: list[_Pending]) -> None:
        """Write ``group`` in one transaction and settle its futures once committed
        (before the connection goes back to the pool: nobody waits for that)."""
        committed = False
        try:
            async with self.db.write_connection() as connection:
                outcomes = await _write_group(connection, group)
                await connection.commit()
                committed = True
                for pending, outcome in zip(group, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        _settle(pending.future, exc=outcome)
                    else:
                        _settle(pending.future, result=outcome)
        except Exception:
            if not committed:
                raise
            # Stored and answered; only giving the connection back failed.
            log.warning("closing the connection after a group commit failed", exc_info=True)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():
        return  # its submitter was cancelled
    if exc is None:
        future.set_result(result)
    elif isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
