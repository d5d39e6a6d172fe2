"""External plugins' metric batches: the hub's busiest path, built for volume.

What a batch must satisfy is the SDK's rulebook (:func:`unity_sdk.accept_batch`,
applied to the raw body in one pass by :func:`unity_sdk.accept_batch_json`),
which the SDK's ``FakeHub`` applies too. A batch is stored whole or not at
all, in one transaction of Core statements (:mod:`unity.storage.batches`):
its receipt first (``INSERT ... ON CONFLICT DO NOTHING``, so a batch id is
stored once and a retry after a lost response is answered ``duplicate``),
then the plugin's state, the samples and latest values, the execution row
and the plugin's row. Observers hear of the batch once it is committed.

A plugin instance on an agent's host (``system-info@nas``) describes that
host: its samples are stored under the host id, whatever ``host`` they name
(the agent's hostname, usually), so its history, charts, alerts and
``/metrics`` labels all use the one id the hub shows for the host.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from unity.plugins.external import external_state, report_interval
from unity.plugins.manager import PluginManager
from unity.plugins.observe import RunObserved, StateChanged
from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.storage import batches, events
from unity.storage import metrics as metric_store
from unity.storage.batches import PluginRow
from unity.storage.db import Database
from unity.storage.types import utcnow
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
    """Store every sample of an accepted batch in one transaction, or none of them.

    ``checked``: the plugin row the batch was accepted against, and how to check
    it again should the transaction find the row changed."""
    now = utcnow()
    samples = batch.samples
    async with manager.db.write_connection() as connection:
        try:
            claimed = await batches.claim_receipt(
                connection,
                plugin_id=plugin_id,
                batch_id=batch.batch_id,
                received_at=now,
                samples=len(samples),
            )
        except IntegrityError:
            # The receipt's plugin is gone from under a remembered row.
            _known.get(manager.db, {}).pop(plugin_id, None)
            raise PluginNotFoundError(plugin_id) from None
        if not claimed:
            return BatchAccepted(stored=0, duplicate=True)
        found = await batches.lock_plugin(connection, plugin_id)
        if found is None or found.plugin != checked[0]:
            # Registered again meanwhile: refused here, the receipt is rolled back.
            metadata = _remember(manager.db, plugin_id, None if found is None else found.plugin)
            batch = checked[1](metadata)
            samples = batch.samples
        assert found is not None
        interval_of = found.plugin.metadata
        state = partial(
            external_state,
            enabled=found.enabled,
            health_status=found.health_status,
            interval=report_interval(found.config, interval_of),
            missed=manager.settings.stale_after_missed,
            now=now,
        )
        previous = state(runs=found.state, last_seen_at=found.last_seen_at)
        current = state(runs=PluginState.HEALTHY.value, last_seen_at=now)
        host = found.plugin.host_id
        documents = [(host or s.host, s) for s in samples]
        await metric_store.insert_samples(
            connection,
            [metric_store.MetricSample(plugin_id, h, s.timestamp, s.data) for h, s in documents],
        )
        await metric_store.record_execution(
            connection,
            plugin_id=plugin_id,
            started_at=now,
            completed_at=now,
            status=RunStatus.SUCCESS.value,
            duration_ms=0.0,
            metrics_count=len(samples),
            trigger="push",
        )
        await batches.record_push(
            connection,
            plugin_id=plugin_id,
            at=now,
            last_run_at=max(s.timestamp for s in samples),
            state=PluginState.HEALTHY.value,
        )
        change = None
        if current is not previous:
            await events.record_event(
                connection,
                plugin_id=plugin_id,
                at=now,
                previous=previous.value,
                current=current.value,
            )
            change = StateChanged(plugin_id, now, previous, current, "")
    manager.stats.runs.labels(plugin_id, RunStatus.SUCCESS.value).inc()
    await manager.recorder.tell(
        RunObserved(
            plugin_id=plugin_id,
            at=now,
            status=RunStatus.SUCCESS,
            state=current,
            documents=[(h, s.data) for h, s in documents],
            external=True,
        )
    )
    if change is not None:
        await manager.recorder.tell(change)
    return BatchAccepted(stored=len(samples), duplicate=False)
