"""Recording runs and state changes, and telling the observers.

After every run the supervisor hands the outcome here: the execution row, the
documents, the plugin's run state and assessed health go to the database in
one transaction, together with a :class:`~unity.storage.models.PluginEvent`
when the plugin's state changed. Then each observer (the alert engine) gets a
:class:`~unity.plugins.observe.RunObserved`, and a
:class:`~unity.plugins.observe.StateChanged` on a change.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.observe import Observer, RunObserved, StateChanged
from unity.plugins.runtime import ManagedPlugin
from unity.plugins.stats import HubStats
from unity.storage import events, registry
from unity.storage import metrics as metric_store
from unity.storage.db import Database
from unity.storage.types import utcnow
from unity_sdk import HealthStatus, PluginState, RunStatus, plugin_state

__all__ = ["RunRecorder"]

log = logging.getLogger(__name__)


def health_values(status: HealthStatus, at: datetime) -> dict[str, Any]:
    """The registry columns that hold a plugin's last health answer."""
    return {
        "health_status": status.status.value,
        "health_message": status.message,
        "health_details": status.details or None,
        "health_checked_at": at,
    }


class RunRecorder:
    """Writes what happened to a plugin and tells the observers."""

    def __init__(self, db: Database, stats: HubStats) -> None:
        self.db = db
        self.stats = stats
        self.observers: list[Observer] = []

    def state_of(self, managed: ManagedPlugin) -> PluginState:
        return plugin_state(enabled=managed.enabled, runs=managed.runs, health=managed.health)

    async def record_run(
        self,
        managed: ManagedPlugin,
        *,
        started: datetime,
        status: RunStatus,
        duration_ms: float,
        error: str | None,
        documents: list[tuple[str, dict[str, Any]]],
        trigger: str,
        health: HealthStatus | None,
    ) -> None:
        completed = utcnow()
        if health is not None:
            managed.health = health.status
        previous, current = managed.state, self.state_of(managed)
        samples = [
            metric_store.MetricSample(managed.id, host, started, document)
            for host, document in documents
        ]
        async with self.db.writer() as session:
            await metric_store.finish_run(
                session,
                plugin_id=managed.id,
                started_at=started,
                completed_at=completed,
                status=status.value,
                duration_ms=duration_ms,
                error=error,
                samples=samples,
                state=managed.runs.value,
                consecutive_failures=managed.consecutive_failures,
                trigger=trigger,
                health=health_values(health, completed) if health is not None else None,
            )
            change = self._change(managed, previous, current, error, health, completed)
            if change is not None:
                await self._store(session, change)
        await self.tell(
            RunObserved(
                plugin_id=managed.id,
                at=started,
                status=status,
                state=current,
                documents=documents,
                health=health,
            )
        )
        if change is not None:
            await self.tell(change)

    async def record_skip(self, plugin_id: str) -> None:
        self.stats.runs.labels(plugin_id, RunStatus.SKIPPED.value).inc()
        now = utcnow()
        async with self.db.writer() as session:
            await metric_store.record_execution(
                session,
                plugin_id=plugin_id,
                started_at=now,
                completed_at=now,
                status=RunStatus.SKIPPED.value,
                duration_ms=0.0,
                error="previous run still in progress",
            )

    async def record_health(self, managed: ManagedPlugin, status: HealthStatus) -> None:
        """Store a health-check answer (and the state change it makes)."""
        now = utcnow()
        managed.health = status.status
        previous, current = managed.state, self.state_of(managed)
        change = self._change(managed, previous, current, None, status, now)
        async with self.db.session() as session:
            row = await registry.get_plugin(session, managed.id)
            if row is not None:
                for key, value in health_values(status, now).items():
                    setattr(row, key, value)
            if change is not None:
                await self._store(session, change)
        if change is not None:
            await self.tell(change)

    async def settle(self, managed: ManagedPlugin, message: str) -> None:
        """Record the state change enabling or disabling made, if any."""
        now = utcnow()
        change = self._change(managed, managed.state, self.state_of(managed), message, None, now)
        if change is None:
            return
        async with self.db.session() as session:
            await self._store(session, change)
        await self.tell(change)

    def _change(
        self,
        managed: ManagedPlugin,
        previous: PluginState,
        current: PluginState,
        error: str | None,
        health: HealthStatus | None,
        at: datetime,
    ) -> StateChanged | None:
        if current is previous:
            return None
        managed.state = current
        message = error or (health.message if health is not None else "")
        return StateChanged(managed.id, at, previous, current, message)

    async def _store(self, session: AsyncSession, change: StateChanged) -> None:
        await events.record_event(
            session,
            plugin_id=change.plugin_id,
            at=change.at,
            previous=change.previous.value,
            current=change.current.value,
            message=change.message[:2000],
        )

    async def tell(self, event: RunObserved | StateChanged) -> None:
        """Hand ``event`` to every observer; one that raises is logged, never the run's problem."""
        for observer in self.observers:
            try:
                await observer(event)
            except Exception:
                log.exception("observer %r failed on %s", observer, type(event).__name__)
