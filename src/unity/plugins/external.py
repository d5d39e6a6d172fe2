"""External plugins: registration, metric batches and health reports.

External plugins run on other hosts and push over HTTP; the hub keeps their
registry row, config, metrics and health like any other plugin but never runs
their code. A batch is stored whole or not at all, and a batch id is stored
once (a retry after a lost response is answered ``duplicate``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from unity.auth.external import consume_enrollment, issue_plugin_key
from unity.plugins.config import check_schema
from unity.plugins.manager import PluginManager, PluginNotFoundError, PluginStateError
from unity.storage import metrics as metric_store
from unity.storage import registry
from unity.storage.models import BatchReceipt, Plugin
from unity.storage.types import utcnow
from unity_sdk import MetadataError, PluginMetadata, check_prometheus_names
from unity_sdk.wire import (
    BatchAccepted,
    HealthReport,
    MetricBatch,
    RegisterRequest,
    RegisterResponse,
)

__all__ = [
    "EnrollmentRefusedError",
    "is_stale",
    "record_health",
    "register",
    "store_batch",
]


class EnrollmentRefusedError(PermissionError):
    """The enrollment token is invalid, expired, revoked or used up."""


def parse_metadata(document: dict[str, Any]) -> PluginMetadata:
    """Validate the metadata an external plugin sent; ``MetadataError`` if unusable."""
    try:
        metadata = PluginMetadata.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise MetadataError(f"metadata is invalid: {problems}") from exc
    check_schema(metadata)
    check_prometheus_names(metadata)
    return metadata


async def register(
    manager: PluginManager, request: RegisterRequest, enrollment_token: str
) -> RegisterResponse:
    """Trade an enrollment token for a plugin API key; create or refresh the registry row."""
    metadata = parse_metadata(request.metadata)
    if metadata.id in manager.plugins:
        raise PluginStateError(f"plugin id {metadata.id!r} belongs to a plugin inside the hub")
    async with manager.db.session() as session:
        enrollment = await consume_enrollment(session, enrollment_token)
        if enrollment is None:
            raise EnrollmentRefusedError("enrollment token is invalid, expired, revoked or used up")
        existing = await registry.get_plugin(session, metadata.id)
        if existing is not None and not existing.external:
            raise PluginStateError(f"plugin id {metadata.id!r} belongs to a plugin inside the hub")
        await registry.sync_plugin(session, metadata=metadata, external=True, enable_if_new=True)
        key = await issue_plugin_key(
            session,
            plugin_id=metadata.id,
            hostname=request.hostname,
            enrollment_id=enrollment.id,
        )
    return RegisterResponse(plugin_id=metadata.id, api_key=key.value, key_id=key.id)


async def _external_row(session: Any, plugin_id: str) -> Plugin:
    row = await registry.get_plugin(session, plugin_id)
    if row is None:
        raise PluginNotFoundError(plugin_id)
    if not row.external:
        raise PluginStateError(f"plugin {plugin_id!r} is not an external plugin")
    return row


async def store_batch(manager: PluginManager, plugin_id: str, batch: MetricBatch) -> BatchAccepted:
    """Store every sample of the batch in one transaction, or none of them."""
    now = utcnow()
    try:
        async with manager.db.writer() as session:
            row = await _external_row(session, plugin_id)
            session.add(
                BatchReceipt(
                    plugin_id=plugin_id,
                    batch_id=batch.batch_id,
                    received_at=now,
                    samples=len(batch.samples),
                )
            )
            await session.flush()
            await metric_store.insert_samples(
                session,
                [
                    metric_store.MetricSample(plugin_id, s.host, s.timestamp, s.data)
                    for s in batch.samples
                ],
            )
            await metric_store.record_execution(
                session,
                plugin_id=plugin_id,
                started_at=now,
                completed_at=now,
                status="success",
                duration_ms=0.0,
                metrics_count=len(batch.samples),
                trigger="push",
            )
            row.last_seen_at = now
            row.last_run_at = max(s.timestamp for s in batch.samples)
            row.last_success_at = now
            row.run_count += 1
            row.state = "healthy"
            row.consecutive_failures = 0
    except IntegrityError:
        # The receipt's primary key exists: this batch id was stored before.
        return BatchAccepted(stored=0, duplicate=True)
    manager.stats.runs.labels(plugin_id, "success").inc()
    return BatchAccepted(stored=len(batch.samples), duplicate=False)


async def record_health(manager: PluginManager, plugin_id: str, report: HealthReport) -> datetime:
    now = utcnow()
    async with manager.db.session() as session:
        row = await _external_row(session, plugin_id)
        row.health_status = report.status.value
        row.health_message = report.message
        row.health_details = {
            **report.details,
            "buffered": report.buffered,
            "dropped": report.dropped,
        }
        row.health_checked_at = now
        row.last_seen_at = now
    return now


def is_stale(row: Plugin, *, missed: int, now: datetime | None = None) -> bool:
    """An enabled external plugin that has not reported for ``missed`` intervals."""
    if not (row.external and row.enabled) or row.last_seen_at is None:
        return False
    interval = (row.config or {}).get("interval") or row.plugin_metadata.get("default_interval", 60)
    return (now or utcnow()) - row.last_seen_at > timedelta(seconds=float(interval) * missed)
