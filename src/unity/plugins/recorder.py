"""Recording runs and state changes, and telling the observers.

After every run the supervisor hands the outcome here: the execution row, the
documents, the plugin's run state and assessed health go to the database
together, with a :class:`~unity.storage.models.PluginEvent` when the plugin's
state changed, through the group-commit writer (:mod:`unity.storage.writer`:
one transaction for every run and batch queued meanwhile); the run is
recorded once that transaction is committed. Then each observer (the alert engine) gets a
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
from unity.storage.db import Database
from unity.storage.types import utcnow
from unity.storage.writer import RunWrite
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


def _event(change: StateChanged) -> dict[str, Any]:
    """The stored columns of a state change (its plugin's aside)."""
    return {
        "at": change.at,
        "previous": change.previous.value,
        "current": change.current.value,
        "message": change.message[:2000],
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
        values: dict[str, Any] = {
            "last_run_at": started,
            "state": managed.runs.value,
            "consecutive_failures": managed.consecutive_failures,
            "last_error": error,
            "updated_at": completed,
        }
        if error is None:
            values["last_success_at"] = completed
        if health is not None:
            values.update(health_values(health, completed))
        change = self._change(managed, previous, current, error, health, completed)
        write = self.db.group_writer.submit(
            RunWrite(
                managed.id,
                execution={
                    "started_at": started,
                    "completed_at": completed,
                    "status": status.value,
                    "duration_ms": duration_ms,
                    "error": error,
                    "metrics_count": len(documents),
                    "trigger": trigger,
                },
                documents=[(host, started, document) for host, document in documents],
                plugin=values,
                event=None if change is None else _event(change),
            )
        )
        try:
            await write
        except Exception:
            managed.state = previous  # not stored: the next run finds the change again
            raise
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
        await self.db.group_writer.submit(
            RunWrite(
                plugin_id,
                execution={
                    "started_at": now,
                    "completed_at": now,
                    "status": RunStatus.SKIPPED.value,
                    "duration_ms": 0.0,
                    "error": "previous run still in progress",
                },
            )
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
        await events.record_event(session, plugin_id=change.plugin_id, **_event(change))

    async def tell(self, event: RunObserved | StateChanged) -> None:
        """Hand ``event`` to every observer; one that raises is logged, never the run's problem."""
        for observer in self.observers:
            try:
                await observer(event)
            except Exception:
                log.exception("observer %r failed on %s", observer, type(event).__name__)
