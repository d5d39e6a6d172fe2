"""The alert tables, read and written: rule config, silences, maintenance, history.

Plain query functions with keyword-only arguments; the engine and the API
share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.models import (
    AlertInstance,
    AlertRuleOverride,
    AlertRuleRow,
    AlertSilence,
    AlertTransition,
    MaintenanceWindow,
    Plugin,
)
from unity_sdk import AlertRule

__all__ = [
    "RuleConfig",
    "Suppressions",
    "active_instances",
    "load_rule_config",
    "load_suppressions",
    "purge_history",
    "rules_signature",
    "silence_matches",
]

ACTIVE = ("firing", "pending")


@dataclass
class RuleConfig:
    """Overrides of default rules and the users' rules, by plugin."""

    overrides: dict[str, dict[str, tuple[bool, dict[str, Any]]]]
    user: dict[str, list[AlertRule]]
    external: set[str]

    def overrides_of(self, plugin_id: str) -> dict[str, tuple[bool, dict[str, Any]]]:
        return self.overrides.get(plugin_id, {})

    def user_rules_of(self, plugin_id: str) -> list[AlertRule]:
        return self.user.get(plugin_id, [])


async def load_rule_config(session: AsyncSession) -> RuleConfig:
    external = await session.scalars(select(Plugin.id).where(Plugin.external))
    config = RuleConfig({}, {}, set(external))
    for row in await session.scalars(select(AlertRuleOverride)):
        config.overrides.setdefault(row.plugin_id, {})[row.rule_id] = (
            row.enabled,
            dict(row.changes or {}),
        )
    for user in await session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.rule_id)):
        try:
            rule = AlertRule.model_validate(user.definition)
        except ValidationError:
            continue  # written by a newer hub; the API refuses such rules
        config.user.setdefault(user.plugin_id, []).append(rule)
    return config


async def rules_signature(session: AsyncSession) -> tuple[Any, ...]:
    """Changes whenever a rule or an override is added, changed or removed."""
    rules = (await session.execute(select(func.count(), func.max(AlertRuleRow.updated_at)))).one()
    overrides = (
        await session.execute(select(func.count(), func.max(AlertRuleOverride.updated_at)))
    ).one()
    return (*rules, *overrides)


def silence_matches(matchers: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether an alert with ``labels`` (plugin, rule, host, item and its own) is matched.

    Every matcher given must equal the alert's label; ``labels`` in the
    matchers is a mapping of further labels.
    """
    for key in ("rule_id", "plugin_id", "host", "item"):
        wanted = matchers.get(key)
        if wanted and labels.get(key.removesuffix("_id")) != wanted:
            return False
    extra = matchers.get("labels") or {}
    return all(labels.get(str(k)) == str(v) for k, v in extra.items())


@dataclass
class Suppressions:
    """The silences and maintenance windows in force at ``at``."""

    silences: list[dict[str, Any]]
    hosts: set[str]

    def silenced(self, labels: Mapping[str, str]) -> bool:
        if labels.get("host") in self.hosts:
            return True
        return any(silence_matches(m, labels) for m in self.silences)


async def load_suppressions(session: AsyncSession, *, now: datetime) -> Suppressions:
    silences = await session.scalars(
        select(AlertSilence.matchers).where(
            AlertSilence.starts_at <= now, AlertSilence.ends_at > now
        )
    )
    hosts = await session.scalars(
        select(MaintenanceWindow.host).where(
            MaintenanceWindow.starts_at <= now, MaintenanceWindow.ends_at > now
        )
    )
    return Suppressions([dict(m or {}) for m in silences], set(hosts))


async def active_instances(
    session: AsyncSession, *, plugin_id: str | None = None, states: Sequence[str] = ACTIVE
) -> list[AlertInstance]:
    """Instances in ``states``: firing first, then pending; newest first within each."""
    stmt = select(AlertInstance).where(AlertInstance.state.in_(states))
    if plugin_id is not None:
        stmt = stmt.where(AlertInstance.plugin_id == plugin_id)
    rows = list(await session.scalars(stmt.order_by(AlertInstance.since.desc())))
    order = {state: i for i, state in enumerate(("firing", "pending", "resolved", "inactive"))}
    return sorted(rows, key=lambda r: order.get(r.state, 9))


async def history(
    session: AsyncSession,
    *,
    limit: int,
    before: int | None = None,
    plugin_id: str | None = None,
    fingerprint: str | None = None,
) -> list[AlertTransition]:
    """Transitions, newest first (keyset-paginated by id)."""
    stmt = select(AlertTransition).order_by(AlertTransition.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(AlertTransition.id < before)
    if plugin_id is not None:
        stmt = stmt.where(AlertTransition.plugin_id == plugin_id)
    if fingerprint is not None:
        stmt = stmt.where(AlertTransition.fingerprint == fingerprint)
    return list(await session.scalars(stmt))


async def purge_history(session: AsyncSession, *, now: datetime, days: int) -> int:
    """Delete transitions older than ``days``, and silences and windows long over."""
    cutoff = now - timedelta(days=days)
    result = await session.execute(delete(AlertTransition).where(AlertTransition.at < cutoff))
    await session.execute(delete(AlertSilence).where(AlertSilence.ends_at < cutoff))
    await session.execute(delete(MaintenanceWindow).where(MaintenanceWindow.ends_at < cutoff))
    await session.execute(
        delete(AlertInstance).where(
            AlertInstance.state.in_(("resolved", "inactive")),
            or_(AlertInstance.resolved_at.is_(None), AlertInstance.resolved_at < cutoff),
            AlertInstance.last_eval_at < cutoff,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
