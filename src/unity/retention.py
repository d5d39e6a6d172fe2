"""Retention: the periodic pass that deletes what the hub no longer keeps.

Metrics and executions past each plugin's ``retention_days``, rollup tiers past
theirs (``rollup_minute_days``, ``rollup_hour_days``), credential audit
entries past theirs, batch receipts past the idempotency window and ended
dashboard sessions. It runs beside the plugins, not inside their manager.
With several hubs on one PostgreSQL database, each pass runs on one of them:
the hub that holds the ``retention`` lease, renewed every pass.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from unity.auth.tokens import SESSION_TOKEN_PREFIX
from unity.credentials import audit
from unity.settings import Settings
from unity.storage import events, housekeeping, registry, rollups, tiers
from unity.storage import metrics as metric_store
from unity.storage.db import Database, is_unavailable
from unity.storage.leases import RETENTION_LEASE, HubLeases
from unity.storage.types import utcnow

__all__ = ["Retention"]

log = logging.getLogger(__name__)


class Retention:
    """Deletes data past its retention, once now and then every ``retention_check_seconds``."""

    def __init__(self, db: Database, settings: Settings, leases: HubLeases | None = None) -> None:
        self.db = db
        self.settings = settings
        self.leases = leases or HubLeases(db, settings)

    async def purge(self, now: datetime | None = None) -> dict[str, tuple[int, int]]:
        """One pass; returns ``{plugin: (metrics, executions)}`` removed.

        It also deletes the notification delivery log, and notices that failed for
        good or were dropped, past ``notify_log_days``.
        """
        now = now or utcnow()
        removed: dict[str, tuple[int, int]] = {}
        async with self.db.session() as session:
            for row in await registry.list_plugins(session, limit=1_000_000):
                days = (row.config or {}).get("retention_days") or self.settings.retention_days
                cutoff = metric_store.retention_cutoff(now, int(days))
                counts = await metric_store.purge_older_than(
                    session, plugin_id=row.id, cutoff=cutoff
                )
                await events.purge_events(session, plugin_id=row.id, before=cutoff)
                if any(counts):
                    removed[row.id] = counts
            buckets = await rollups.purge_tiers(
                session,
                now=now,
                days={
                    tiers.MINUTE.name: self.settings.rollup_minute_days,
                    tiers.HOUR.name: self.settings.rollup_hour_days,
                },
            )
            if any(buckets.values()):
                log.info("retention removed rollup buckets %s", buckets)
            audit_entries = await audit.purge(
                session,
                routine_before=metric_store.retention_cutoff(now, self.settings.retention_days),
                before=metric_store.retention_cutoff(now, self.settings.audit_retention_days),
            )
            if audit_entries:
                log.info("retention removed %d credential audit entries", audit_entries)
            receipts = await housekeeping.purge_batch_receipts(
                session, before=now - timedelta(days=self.settings.batch_receipt_days)
            )
            sessions = await housekeeping.purge_ended_tokens(
                session, name_prefix=SESSION_TOKEN_PREFIX, now=now
            )
            if receipts or sessions:
                log.info(
                    "retention removed %d batch receipts, %d ended sessions", receipts, sessions
                )
            deliveries, notices = await housekeeping.purge_notifications(
                session, before=now - timedelta(days=self.settings.notify_log_days)
            )
            if deliveries or notices:
                log.info(
                    "retention removed %d delivery-log entries, %d finished notices",
                    deliveries,
                    notices,
                )
        return removed

    async def run(self) -> None:
        """Pass after pass until cancelled; the first waits a minute so start-up stays quick."""
        await asyncio.sleep(min(60.0, self.settings.retention_check_seconds))
        while True:
            try:
                # The lease outlasts the pause between passes: its holder keeps it.
                seconds = self.settings.retention_check_seconds * 1.5
                if await self.leases.claim(RETENTION_LEASE, seconds):
                    removed = await self.purge()
                    log.info("retention pass on hub %s removed %s", self.leases.hub_id, removed)
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("retention pass failed")
            await asyncio.sleep(self.settings.retention_check_seconds)
