"""What the alert tests share: a plugin with rules, a notifier that records,
a clock the test moves, and an engine on the test app's database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update

from unity.alerts import AlertEngine
from unity.notify import AlertNotice
from unity.plugins.observe import RunObserved
from unity.storage.models import Plugin
from unity_sdk import (
    AlertRule,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginMetadata,
    PluginState,
    RunStatus,
)

RULES = [
    AlertRule(
        id="load-high",
        metric="load",
        threshold=90,
        clear=80,
        severity="critical",
        summary="load on {host} is {value}{unit} (limit {threshold}{unit})",
    ),
    AlertRule(id="disk-full", metric="disks.*.percent", threshold=90, for_seconds=60),
    AlertRule(id="disk-hot", metric="disks.*.celsius", op=">=", threshold_metric="disks.*.high"),
    AlertRule(id="errors-growing", kind="rate", metric="errors", threshold=0, unit="count/min"),
    AlertRule(id="silent", kind="no_data", intervals=2, severity="critical"),
    AlertRule(id="failing", kind="state"),
    AlertRule(id="unwell", kind="health"),
]


class ProbePlugin(PluginBase):
    """Declares metrics and alert rules; the tests feed its documents by hand."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="probe",
            name="Probe",
            version="1.0.0",
            category=PluginCategory.CUSTOM,
            default_interval=60,
            metrics=[
                MetricField(name="load", unit="%"),
                MetricField(name="disks.*.percent", unit="%"),
                MetricField(name="disks.*.celsius", unit="°C"),
                MetricField(name="disks.*.high", unit="°C"),
                MetricField(name="errors", unit="count", kind=MetricKind.COUNTER),
                MetricField(name="name", kind=MetricKind.INFO),
            ],
            alert_rules=RULES,
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"load": 10.0}


class Recorder:
    """A notifier that keeps every notice it is given."""

    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    async def submit(self, notice: AlertNotice) -> None:
        self.notices.append(notice)

    def of(self, rule_id: str) -> list[tuple[str, str]]:
        return [(n.status, n.labels.get("item", "")) for n in self.notices if n.rule_id == rule_id]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def run(
    clock: Clock,
    document: dict[str, Any],
    host: str = "web1",
    *,
    plugin_id: str = "probe",
    **extra: Any,
) -> RunObserved:
    values: dict[str, Any] = {
        "plugin_id": plugin_id,
        "at": clock.now,
        "status": RunStatus.SUCCESS,
        "state": PluginState.HEALTHY,
        "documents": [(host, document)],
    }
    values.update(extra)
    return RunObserved(**values)


async def enable(app: FastAPI, plugin_id: str = "probe") -> None:
    async with app.state.db.session() as session:
        await session.execute(update(Plugin).where(Plugin.id == plugin_id).values(enabled=True))


async def engine_for(app: FastAPI, clock: Clock, recorder: Recorder) -> AlertEngine:
    """An engine on the app's database with the test's clock; the app's own engine
    stops ticking, so only the test moves time."""
    await app.state.alerts.stop()
    return AlertEngine(
        app.state.db,
        app.state.settings,
        metadata=app.state.manager.metadata_for,
        notifier=recorder,
        clock=clock,
    )
