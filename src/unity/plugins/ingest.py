"""External plugins' metric batches: the hub's busiest path, built for volume.

What a batch must satisfy is the SDK's rulebook (:func:`unity_sdk.accept_batch`,
applied to the raw body in one pass by :func:`unity_sdk.accept_batch_json`),
which the SDK's ``FakeHub`` applies too. A batch is stored whole or not at
all, through the group-commit writer (:mod:`unity.storage.writer`: one
transaction of Core statements for every batch and run queued meanwhile): its
receipt (``INSERT ... ON CONFLICT DO NOTHING``, so a batch id is stored once
and a retry after a lost response is answered ``duplicate``), the plugin's
state, the samples and latest values, the execution row and the plugin's row.
The answer, and the observers, come once that transaction is committed.

A plugin instance on an agent's host (``system-info@nas``) describes that
host: its samples are stored under the host id, whatever ``host`` they name
(the agent's hostname, usually), so its history, charts, alerts and
``/metrics`` labels all use the one id the hub shows for the host.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from unity.plugins.external import external_state, report_interval
from unity.plugins.manager import PluginManager
from unity.plugins.observe import RunObserved, StateChanged
from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.storage import batches
from unity.storage.batches import PluginRow
from unity.storage.db import Database
from unity.storage.types import utcnow
from unity.storage.writer import Group, Staged, WriteItem
from unity_sdk import (
    BatchAccepted,
    MetricBatch,
    PluginMetadata,
    PluginState,
    RunStatus,
    accept_batch_json,
)

__all__ = ["ingest", "store_batch"]

# Per database, each external plugin's row as last read, its metadata parsed. A
# batch is checked against it before its transaction; the transaction reads the
# row again and checks the batch again only if a registration changed it.
_known: weakref.WeakKeyDictionary[Database, dict[str, tuple[PluginRow, PluginMetadata]]] = (
    weakref.WeakKeyDictionary()
)


def _remember(db: Database, plugin_id: str, row: PluginRow | None) -> PluginMetadata:
    """The metadata of ``plugin_id`` if ``row`` is an external plugin; 404 or 409 otherwise."""
    known = _known.setdefault(db, {})
    if row is None or not row.external:
        known.pop(plugin_id, None)
        if row is None:
            raise PluginNotFoundError(plugin_id)
        raise PluginStateError(f"plugin {plugin_id!r} is not an external plugin")
    cached = known.get(plugin_id)
    if cached is None or cached[0] != row:
        cached = known[plugin_id] = (row, PluginMetadata.model_validate(row.metadata))
    return cached[1]


async def ingest(
    manager: PluginManager,
    plugin_id: str,
    body: bytes,
    *,
    max_future_skew: timedelta,
    parse: Callable[[bytes | str], Any],
) -> BatchAccepted:
    """Check the batch in the raw JSON ``body`` and store it.

    404 for an unknown id, 409 for one that is not external, then the
    rulebook's 413/422 (``parse`` reads a body the one pass refused, raising
    the caller's answer when it is not JSON); nothing is stored unless the
    whole batch is accepted."""
    db = manager.db
    cached = _known.get(db, {}).get(plugin_id)
    if cached is None:
        async with db.connection() as connection:
            found = await batches.read_plugin(connection, plugin_id)
        metadata = _remember(db, plugin_id, found)
        assert found is not None
        row = found
    else:
        row, metadata = cached
    check = partial(accept_batch_json, body=body, max_future_skew=max_future_skew, parse=parse)
    batch = check(metadata)
    return await store_batch(manager, plugin_id, batch, checked=(row, check))


async def store_batch(
    manager: PluginManager,
    plugin_id: str,
    batch: MetricBatch,
    *,
    checked: tuple[PluginRow, Callable[[PluginMetadata], MetricBatch]],
) -> BatchAccepted:
    """Store every sample of an accepted batch, or none of them; answer once committed.

    ``checked``: the plugin row the batch was accepted against, and how to check
    it again should the transaction find the row changed."""
    item = _BatchWrite(manager.db, plugin_id, batch, checked, manager.settings.stale_after_missed)
    stored = await manager.db.group_writer.submit(item)
    if stored.observed is None:
        return stored.accepted
    manager.stats.runs.labels(plugin_id, RunStatus.SUCCESS.value).inc()
    await manager.recorder.tell(stored.observed)
    if stored.change is not None:
        await manager.recorder.tell(stored.change)
    return stored.accepted


@dataclass(frozen=True)
class _Stored:
    """A batch's answer, and what the observers hear once it is committed."""

    accepted: BatchAccepted
    observed: RunObserved | None = None
    change: StateChanged | None = None


class _BatchWrite(WriteItem[_Stored]):
    """A batch in the group writer's transaction: its receipt, then the plugin's
    locked row decides (gone: 404; registered again: checked again), then its rows."""

    def __init__(
        self,
        db: Database,
        plugin_id: str,
        batch: MetricBatch,
        checked: tuple[PluginRow, Callable[[PluginMetadata], MetricBatch]],
        missed: int,
    ) -> None:
        self.db = db
        self.plugin_id = plugin_id
        self.batch = batch
        self.checked = checked
        self.missed = missed
        self.rows = len(batch.samples)
        self.receipt = (plugin_id, batch.batch_id)
        self.locks = plugin_id
        self.received_at = utcnow()

    def stage(self, group: Group) -> Staged[_Stored]:
        plugin_id, now = self.plugin_id, self.received_at
        assert now is not None
        found = group.states.get(plugin_id)
        if found is None:
            # The plugin is gone from under a remembered row.
            _known.get(self.db, {}).pop(plugin_id, None)
            raise PluginNotFoundError(plugin_id)
        if self.receipt not in group.claimed:
            return Staged(_Stored(BatchAccepted(stored=0, duplicate=True)))
        batch = self.batch
        if found.plugin != self.checked[0]:
            # Registered again meanwhile: checked again (refused: its receipt goes too).
            batch = self.checked[1](_remember(self.db, plugin_id, found.plugin))
        samples = batch.samples
        state = partial(
            external_state,
            enabled=found.enabled,
            health_status=found.health_status,
            interval=report_interval(found.config, found.plugin.metadata),
            missed=self.missed,
            now=now,
        )
        previous = state(runs=found.state, last_seen_at=found.last_seen_at)
        current = state(runs=PluginState.HEALTHY.value, last_seen_at=now)
        host = found.plugin.host_id
        documents = [(host or s.host, s) for s in samples]
        change = None
        if current is not previous:
            change = StateChanged(plugin_id, now, previous, current, "")
        staged = Staged(
            _Stored(
                BatchAccepted(stored=len(samples), duplicate=False),
                RunObserved(
                    plugin_id=plugin_id,
                    at=now,
                    status=RunStatus.SUCCESS,
                    state=current,
                    documents=[(h, s.data) for h, s in documents],
                    external=True,
                ),
                change,
            )
        )
        for h, s in documents:
            staged.sample(plugin_id, h, s.timestamp, s.data)
        staged.execution(
            plugin_id=plugin_id,
            started_at=now,
            completed_at=now,
            status=RunStatus.SUCCESS.value,
            duration_ms=0.0,
            metrics_count=len(samples),
            trigger="push",
        )
        newest = max(s.timestamp for s in samples)
        staged.push = (plugin_id, now, newest, PluginState.HEALTHY.value)
        if change is not None:
            staged.event(
                plugin_id=plugin_id, at=now, previous=previous.value, current=current.value
            )
        return staged
