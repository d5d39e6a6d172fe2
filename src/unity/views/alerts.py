"""What the hub shows about alerts: active alerts, their history, the rules in
force, silences and maintenance windows, and what a plugin's charts draw
(threshold lines and the periods an alert fired).

The API routes (``/api/alerts``) and the dashboard pages both read through
these functions; each shapes the records it gets (JSON, HTML).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.alerts import RuleError, effective_rules
from unity.alerts.rules import describe
from unity.alerts.store import active_instances, history, load_rule_config
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.storage.models import (
    AlertInstance,
    AlertSilence,
    AlertTransition,
    MaintenanceWindow,
    Plugin,
)
from unity.views.history import QueryError
from unity_sdk import AlertKind, AlertRule, MetricField, MetricKind, convert_unit, rate_scale

__all__ = [
    "AlertPeriod",
    "PluginRule",
    "RuleInForce",
    "SilenceView",
    "ThresholdLine",
    "WindowView",
    "active_alerts",
    "alert_history",
    "alert_periods",
    "current_silences",
    "current_windows",
    "firing_by_severity",
    "plugin_rules",
    "rules_in_force",
    "threshold_lines",
]

FIRING = "firing"


async def active_alerts(
    session: AsyncSession, *, plugin_id: str | None = None
) -> list[AlertInstance]:
    """Active alerts: firing first, then pending; newest first within each."""
    return await active_instances(session, plugin_id=plugin_id)


async def firing_by_severity(session: AsyncSession) -> dict[str, int]:
    """How many alerts fire now, by severity, from the shared tables (so every hub
    on one database tells the same numbers)."""
    rows = await session.execute(
        select(AlertInstance.severity, func.count())
        .where(AlertInstance.state == FIRING)
        .group_by(AlertInstance.severity)
    )
    return {str(severity): int(count) for severity, count in rows}


async def alert_history(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    plugin_id: str | None = None,
    fingerprint: str | None = None,
) -> list[AlertTransition]:
    """Transitions of alerts, newest first, ``limit`` at most (keyset by id: ``before``)."""
    return await history(
        session, limit=limit, before=before, plugin_id=plugin_id, fingerprint=fingerprint
    )


# -- rules ----------------------------------------------------------------


@dataclass(frozen=True)
class RuleInForce:
    """A rule as it applies to one plugin, and where it came from."""

    plugin_id: str
    rule: AlertRule
    source: Literal["default", "user"]
    enabled: bool
    overridden: bool


@dataclass(frozen=True)
class PluginRule:
    """A rule on a plugin's page: what it checks, and how many of its alerts fire."""

    rule: AlertRule
    source: str
    enabled: bool
    overridden: bool
    condition: str
    firing: int


async def rules_in_force(
    session: AsyncSession, manager: PluginManager, *, plugin_id: str | None = None
) -> list[RuleInForce]:
    """Every rule in force, by plugin: its default rules (with overrides), then users'."""
    config = await load_rule_config(session)
    ids = [p for p in await session.scalars(select(Plugin.id)) if plugin_id in (None, p)]
    found: list[RuleInForce] = []
    for pid in sorted(ids):
        try:
            metadata = await manager.metadata_for(pid)
        except (PluginNotFoundError, PluginStateError, ValidationError):
            continue  # its code is gone or its stored metadata unreadable: no rules to show
        external = pid in config.external
        user = config.user_rules_of(pid)
        try:
            rules = effective_rules(metadata, config.overrides_of(pid), user, external=external)
        except RuleError:
            rules = effective_rules(metadata, {}, user, external=external)
        found += [
            RuleInForce(pid, e.rule, "user" if e.source == "user" else "default", e.enabled,
                        e.overridden)
            for e in rules
        ]  # fmt: skip
    return found


async def plugin_rules(
    session: AsyncSession, manager: PluginManager, plugin_id: str
) -> list[PluginRule]:
    """The rules of one plugin with their conditions in words and their firing alerts."""
    rules = await rules_in_force(session, manager, plugin_id=plugin_id)
    active = await active_alerts(session, plugin_id=plugin_id)
    firing = Counter(a.rule_id for a in active if a.state == FIRING)
    units = {m.name: m.unit for m in (await manager.metadata_for(plugin_id)).metrics}
    return [
        PluginRule(r.rule, r.source, r.enabled, r.overridden,
                   describe(r.rule, units.get(r.rule.metric or "", "")), firing[r.rule.id])
        for r in rules
    ]  # fmt: skip


# -- what a chart draws ----------------------------------------------------


@dataclass(frozen=True)
class ThresholdLine:
    """A rule's threshold on a chart, in the unit the chart shows (a counter's
    chart shows a rate per second)."""

    metric: str
    rule_id: str
    severity: str
    op: str
    value: float
    clear: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "severity": self.severity,
            "op": self.op,
            "value": self.value,
            "clear": self.clear,
        }


def _line(rule: AlertRule, metric: MetricField) -> ThresholdLine | None:
    if rule.threshold is None or rule.threshold_metric is not None:
        return None  # a limit read from another metric differs per item and over time
    counter = metric.kind is MetricKind.COUNTER
    if rule.kind is AlertKind.THRESHOLD and not counter:
        unit = rule.unit if rule.unit is not None else metric.unit
        value = convert_unit(rule.threshold, unit, metric.unit)
        clear = None if rule.clear is None else convert_unit(rule.clear, unit, metric.unit)
    elif rule.kind is AlertKind.RATE and counter:
        scale = rate_scale(rule.unit, metric.unit)
        if not scale:
            return None
        value = rule.threshold / scale
        clear = None if rule.clear is None else rule.clear / scale
    else:
        return None
    if value is None:
        return None
    return ThresholdLine(metric.name, rule.id, rule.severity.value, rule.op, value, clear)


def threshold_lines(
    rules: Iterable[RuleInForce | PluginRule], metrics: Iterable[MetricField]
) -> dict[str, list[ThresholdLine]]:
    """The threshold lines of each charted metric, by metric name (enabled rules only)."""
    declared = {m.name: m for m in metrics}
    lines: dict[str, list[ThresholdLine]] = {}
    for entry in rules:
        metric = declared.get(entry.rule.metric or "")
        if not entry.enabled or metric is None:
            continue
        line = _line(entry.rule, metric)
        if line is not None:
            lines.setdefault(metric.name, []).append(line)
    return lines


@dataclass
class AlertPeriod:
    """A span of time an alert of a plugin was firing (``end`` None: it still is)."""

    fingerprint: str
    rule_id: str
    host: str
    item: str
    severity: str
    start: datetime
    end: datetime | None


def _span(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    try:
        start, end = (
            t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC) for t in (start, end)
        )
    except OverflowError as exc:
        raise QueryError("start and end must be ordinary dates") from exc
    if start >= end:
        raise QueryError("start must be before end")
    return start, end


async def alert_periods(
    session: AsyncSession,
    *,
    plugin_id: str,
    start: datetime,
    end: datetime,
    host: str | None = None,
) -> list[AlertPeriod]:
    """When the plugin's alerts fired between ``start`` and ``end``, from their stored
    transitions (clipped to the range; alerts without a host count for every host).

    A time without a zone is UTC; a range that cannot be asked raises ``QueryError``.
    """
    start, end = _span(start, end)
    scope = [AlertTransition.plugin_id == plugin_id]
    if host is not None:
        scope.append(AlertTransition.host.in_((host, "")))
    # Where each alert stood when the range began: its last transition before it.
    last_before = (
        select(func.max(AlertTransition.id))
        .where(*scope, AlertTransition.at < start)
        .group_by(AlertTransition.fingerprint)
    )
    earlier = await session.scalars(
        select(AlertTransition).where(
            AlertTransition.id.in_(last_before), AlertTransition.to_state == FIRING
        )
    )
    during = await session.scalars(
        select(AlertTransition)
        .where(*scope, AlertTransition.at >= start, AlertTransition.at <= end)
        .order_by(AlertTransition.at, AlertTransition.id)
    )
    open_: dict[str, AlertPeriod] = {}
    periods: list[AlertPeriod] = []
    for row in [*earlier, *during]:
        firing = row.to_state == FIRING
        if firing and row.fingerprint not in open_:
            period = AlertPeriod(row.fingerprint, row.rule_id, row.host, row.item, row.severity,
                                 max(row.at, start), None)  # fmt: skip
            open_[row.fingerprint] = period
            periods.append(period)
        elif not firing and row.fingerprint in open_:
            open_.pop(row.fingerprint).end = row.at
    return periods


# -- silences and maintenance ----------------------------------------------


@dataclass(frozen=True)
class SilenceView:
    """A silence that has not ended; ``active`` once it has started."""

    id: int
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    active: bool


@dataclass(frozen=True)
class WindowView:
    """A maintenance window that has not ended; ``active`` once it has started."""

    id: int
    host: str
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    active: bool


def silence_view(row: AlertSilence, now: datetime) -> SilenceView:
    return SilenceView(row.id, dict(row.matchers or {}), row.starts_at, row.ends_at, row.comment,
                       row.created_by, row.starts_at <= now < row.ends_at)  # fmt: skip


def window_view(row: MaintenanceWindow, now: datetime) -> WindowView:
    return WindowView(row.id, row.host, row.starts_at, row.ends_at, row.comment, row.created_by,
                      row.starts_at <= now < row.ends_at)  # fmt: skip


async def current_silences(session: AsyncSession, *, now: datetime) -> list[SilenceView]:
    """Silences that have not ended at ``now``, by end."""
    rows = await session.scalars(
        select(AlertSilence).where(AlertSilence.ends_at > now).order_by(AlertSilence.ends_at)
    )
    return [silence_view(r, now) for r in rows]


async def current_windows(session: AsyncSession, *, now: datetime) -> list[WindowView]:
    """Maintenance windows that have not ended at ``now``, by end."""
    rows = await session.scalars(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.ends_at > now)
        .order_by(MaintenanceWindow.ends_at)
    )
    return [window_view(r, now) for r in rows]
