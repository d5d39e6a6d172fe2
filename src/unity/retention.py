"""Retention: the periodic pass that deletes what the hub no longer keeps.

Metrics and executions past each plugin's ``retention_days``, rollup tiers past
theirs (``rollup_minute_days``, ``rollup_hour_days``), credential audit
entries past theirs, batch receipts past the idempotency window and ended
dashboard sessions. It runs beside the plugins, not inside their manager.
With several hubs on one PostgreSQL database, each pass runs on one of them:
the hub that holds the ``retention`` lease, renewed every pass and, during a
long pass, between plugins.

A plugin's history is deleted plugin by plugin: one short transaction
(queued with the hot writes on SQLite) deletes at most ``chunk_rows`` rows of
each history table, and more follow, with a yield to the event loop in
between, while a chunk came back full. No connection -- and on SQLite not the
write lock -- is held for the whole pass, however many instances and rows
there are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from unity.auth.tokens import SESSION_TOKEN_PREFIX
from unity.credentials import audit
from unity.settings import Settings
from unity.storage import housekeeping, registry, rollups, tiers
from unity.storage import metrics as metric_store
from unity.storage.db import Database, is_unavailable
from unity.storage.leases import RETENTION_LEASE, HubLeases
from unity.storage.types import utcnow

__all__ = ["Retention"]

log = logging.getLogger(__name__)

# Rows one retention transaction deletes from one table at most.
CHUNK_ROWS = 5000


class LeaseLostError(Exception):
    """Another hub took the retention lease during a pass; this hub stops its pass."""


class Retention:
    """Deletes data past its retention, once now and then every ``retention_check_seconds``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        leases: HubLeases | None = None,
        *,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.db = db
        self.settings = settings
        self.leases = leases or HubLeases(db, settings)
        self.chunk_rows = chunk_rows
        # The lease a running pass renews between plugins, and when it last did.
        self._lease_seconds: float | None = None
        self._lease_renewed = 0.0

    async def purge(self, now: datetime | None = None) -> dict[str, tuple[int, int]]:
        """One pass; returns ``{plugin: (metrics, executions)}`` removed.

        It also deletes the notification delivery log, and notices that failed for
        good or were dropped, past ``notify_log_days``.
        """
        now = now or utcnow()
        removed: dict[str, tuple[int, int]] = {}
        async with self.db.session() as session:
            plugins = [
                (row.id, (row.config or {}).get("retention_days") or self.settings.retention_days)
                for row in await registry.list_plugins(session, limit=1_000_000)
            ]
        for plugin_id, days in plugins:
            await self._keep_lease()
            cutoff = metric_store.retention_cutoff(now, int(days))
            counts = await self._purge_plugin(plugin_id, cutoff)
            if any(counts):
                removed[plugin_id] = counts
        await self._keep_lease()
        await self._purge_bookkeeping(now)
        return removed

    async def _purge_bookkeeping(self, now: datetime) -> None:
        """Rollup tiers, credential audit, receipts and sessions, notifications:
        each its own transaction."""
        async with self.db.session() as session:
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
        async with self.db.session() as session:
            audit_entries = await audit.purge(
                session,
                routine_before=metric_store.retention_cutoff(now, self.settings.retention_days),
                before=metric_store.retention_cutoff(now, self.settings.audit_retention_days),
            )
        if audit_entries:
            log.info("retention removed %d credential audit entries", audit_entries)
        async with self.db.session() as session:
            receipts = await housekeeping.purge_batch_receipts(
                session, before=now - timedelta(days=self.settings.batch_receipt_days)
            )
            sessions = await housekeeping.purge_ended_tokens(
                session, name_prefix=SESSION_TOKEN_PREFIX, now=now
            )
        if receipts or sessions:
            log.info("retention removed %d batch receipts, %d ended sessions", receipts, sessions)
        async with self.db.session() as session:
            deliveries, notices = await housekeeping.purge_notifications(
                session, before=now - timedelta(days=self.settings.notify_log_days)
            )
        if deliveries or notices:
            log.info(
                "retention removed %d delivery-log entries, %d finished notices",
                deliveries,
                notices,
            )

    async def _purge_plugin(self, plugin_id: str, before: datetime) -> tuple[int, int]:
        """A plugin's history tables, a chunk of each per transaction, until no
        chunk is full; returns the metrics and executions removed."""
        removed = dict.fromkeys(housekeeping.PLUGIN_HISTORY, 0)
        tables = list(removed)
        while tables:
            async with self.db.writer() as session:
                counts = {
                    table: await housekeeping.purge_history_chunk(
                        session, table, plugin_id=plugin_id, before=before, limit=self.chunk_rows
                    )
                    for table in tables
                }
            for table, count in counts.items():
                removed[table] += count
            tables = [table for table in tables if counts[table] >= self.chunk_rows]
            if tables:
                await asyncio.sleep(0)
        return removed["metrics"], removed["executions"]

    async def _keep_lease(self) -> None:
        """During a pass run under the lease: renew it once a third of it has gone by."""
        seconds = self._lease_seconds
        if seconds is None or time.monotonic() - self._lease_renewed < seconds / 3:
            return
        if not await self.leases.claim(RETENTION_LEASE, seconds):
            raise LeaseLostError
        self._lease_renewed = time.monotonic()

    async def run_once(
        self, lease_seconds: float | None = None
    ) -> dict[str, tuple[int, int]] | None:
        """One pass if this hub holds (or takes) the retention lease, renewing it
        during the pass; None when another hub holds it.

        The lease outlasts the pause between passes (``lease_seconds``, by default
        1.5 times ``retention_check_seconds``): its holder keeps it.
        """
        seconds = lease_seconds or self.settings.retention_check_seconds * 1.5
        if not await self.leases.claim(RETENTION_LEASE, seconds):
            return None
        self._lease_seconds, self._lease_renewed = seconds, time.monotonic()
        try:
            return await self.purge()
        finally:
            self._lease_seconds = None

    async def run(self) -> None:
        """Pass after pass until cancelled; the first waits a minute so start-up stays quick."""
        await asyncio.sleep(min(60.0, self.settings.retention_check_seconds))
        while True:
            try:
                removed = await self.run_once()
                if removed is not None:
                    log.info("retention pass on hub %s removed %s", self.leases.hub_id, removed)
            except LeaseLostError:
                log.warning("retention pass stopped: another hub holds the retention lease")
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("retention pass failed")
            await asyncio.sleep(self.settings.retention_check_seconds)
