"""External plugins' metric batches: the hub's busiest path, built for volume.

What a batch must satisfy is the SDK's rulebook (:func:`unity_sdk.accept_batch`,
applied to the raw body in one pass by :func:`unity_sdk.accept_batch_json`),
which the SDK's ``FakeHub`` applies too. A batch is stored whole or not at
all, in one transaction of Core statements (:mod:`unity.storage.batches`):
its receipt first (``INSERT ... ON CONFLICT DO NOTHING``, so a batch id is
stored once and a retry after a lost response is answered ``duplicate``),
then the plugin's state, the samples and latest values, the execution row
and the plugin's row. Observers hear of the batch once it is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from unity.plugins.external import external_state, report_interval
from unity.plugins.manager import PluginManager
from unity.plugins.observe import RunObserved, StateChanged
from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.storage import batches, events
from unity.storage import metrics as metric_store
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

# Each external plugin's metadata as last parsed, with the document it came from:
# parsed again only when a registration changed it.
_parsed: dict[str, tuple[dict[str, Any], PluginMetadata]] = {}


def _metadata(plugin_id: str, document: dict[str, Any]) -> PluginMetadata:
    cached = _parsed.get(plugin_id)
    if cached is not None and cached[0] == document:
        return cached[1]
    metadata = PluginMetadata.model_validate(document)
    _parsed[plugin_id] = (document, metadata)
    return metadata


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
    async with manager.db.connection() as connection:
        row = await batches.read_plugin(connection, plugin_id)
    if row is None:
        raise PluginNotFoundError(plugin_id)
    if not row.external:
        raise PluginStateError(f"plugin {plugin_id!r} is not an external plugin")
    batch = accept_batch_json(
        _metadata(plugin_id, row.metadata), body, max_future_skew=max_future_skew, parse=parse
    )
    return await store_batch(manager, plugin_id, batch, interval_of=row.metadata)


async def store_batch(
    manager: PluginManager, plugin_id: str, batch: MetricBatch, *, interval_of: dict[str, Any]
) -> BatchAccepted:
    """Store every sample of an accepted batch in one transaction, or none of them.

    ``interval_of`` is the plugin's metadata document (its default interval
    says when it is stale)."""
    now = utcnow()
    samples = batch.samples
    async with manager.db.write_connection() as connection:
        claimed = await batches.claim_receipt(
            connection,
            plugin_id=plugin_id,
            batch_id=batch.batch_id,
            received_at=now,
            samples=len(samples),
        )
        if not claimed:
            return BatchAccepted(stored=0, duplicate=True)
        found = await batches.lock_plugin(connection, plugin_id)
        if found is None:
            raise PluginNotFoundError(plugin_id)
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
        await metric_store.insert_samples(
            connection,
            [metric_store.MetricSample(plugin_id, s.host, s.timestamp, s.data) for s in samples],
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
            documents=[(s.host, s.data) for s in samples],
            external=True,
        )
    )
    if change is not None:
        await manager.recorder.tell(change)
    return BatchAccepted(stored=len(samples), duplicate=False)
