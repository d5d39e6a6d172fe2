"""The plugin catalogue: every registered plugin with its metadata and its one state.

One function answers each question the API, the dashboard and ``/metrics``
ask about plugins, so they cannot disagree:

- :func:`plugin_metadata`: what a plugin declares. From its loaded class for
  in-hub plugins, else from its registry row (external plugins, whose code the
  hub never runs, and in-hub plugins whose code is no longer installed).
- :func:`state_of`: the :class:`~unity_sdk.PluginState` shown and counted
  everywhere, from :func:`unity_sdk.plugin_state`.
- :func:`is_stale`: whether an enabled plugin stopped reporting.
- :func:`plugin_page`, :func:`every_plugin`, :func:`plugin_detail`: the
  plugins as :class:`PluginView` records.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins import external as ingest
from unity.plugins.loader import LoadFailure
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginNotFoundError
from unity.storage import registry
from unity.storage.models import Plugin
from unity.storage.types import utcnow
from unity_sdk import MASK, HealthState, PluginMetadata, PluginState, mask_secrets, plugin_state
from unity_sdk.state import RUN_STATES

__all__ = [
    "HealthView",
    "PluginDetailView",
    "PluginView",
    "detail_of",
    "every_plugin",
    "expected_interval",
    "external_plugins",
    "is_stale",
    "load_failures",
    "plugin_detail",
    "plugin_metadata",
    "plugin_page",
    "plugin_view",
    "state_of",
]

log = logging.getLogger(__name__)
# The last stored metadata document read per plugin id, and what it parsed to.
_parsed: dict[str, tuple[dict[str, Any], PluginMetadata | None]] = {}


@dataclass(frozen=True)
class HealthView:
    """The last health answer of a plugin (its check, or an external plugin's report)."""

    status: HealthState
    message: str
    checked_at: datetime | None


@dataclass(frozen=True)
class PluginView:
    """One plugin as every reader shows it."""

    id: str
    name: str
    version: str
    description: str
    category: str
    enabled: bool
    external: bool
    loaded: bool  # its code is available now (in-hub plugins only)
    state: PluginState
    health: HealthView
    interval: float | None
    run_count: int
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    declared: PluginMetadata | None  # None when the stored metadata no longer validates


@dataclass(frozen=True)
class PluginDetailView(PluginView):
    """Everything about one plugin, its config with secrets masked."""

    author: str
    metadata: dict[str, Any]
    config: dict[str, Any]
    consecutive_failures: int
    reload_error: str | None
    last_seen_at: datetime | None
    health_details: dict[str, Any] | None


def plugin_metadata(manager: PluginManager, row: Plugin) -> PluginMetadata | None:
    """What the plugin declares: its loaded class first, else its registry row.

    None (logged) when the row's stored metadata no longer validates, e.g. it
    was stored by an older hub.
    """
    managed = manager.plugins.get(row.id)
    if managed is not None:
        return managed.metadata
    document = row.plugin_metadata
    parsed = _parsed.get(row.id)
    if parsed is not None and parsed[0] == document:
        # Every list, page and scrape reads the catalogue: comparing the stored
        # document is much cheaper than validating it again.
        return parsed[1]
    try:
        metadata = PluginMetadata.model_validate(document)
    except ValidationError as exc:
        # Logged once per stored document, like it is parsed once.
        log.warning("plugin %s: its stored metadata is not valid: %s", row.id, exc)
        metadata = None
    # A copy: the row's own dict may be changed in place later.
    _parsed[row.id] = (copy.deepcopy(document), metadata)
    return metadata


def expected_interval(
    manager: PluginManager, row: Plugin, metadata: PluginMetadata | None
) -> float:
    """Seconds between the plugin's runs (or reports) when all is well."""
    managed = manager.plugins.get(row.id)
    if managed is not None:
        return managed.interval
    configured = (row.config or {}).get("interval")
    if isinstance(configured, int | float) and not isinstance(configured, bool) and configured > 0:
        return float(configured)
    return metadata.default_interval if metadata is not None else 60.0


def is_stale(
    row: Plugin, *, interval: float, missed: int, timeout: float = 0.0, now: datetime
) -> bool:
    """Whether an enabled plugin stopped reporting.

    An external plugin is stale when it has not been heard from (batch or
    health report) for ``missed`` of its intervals: the rule of
    :func:`unity.plugins.external.is_stale`, which its state events use too.
    An in-hub plugin is stale when its last run started more than ``missed``
    intervals (plus one run's ``timeout``) ago while its runs succeed: after
    failures the hub spaces runs out on purpose (backoff), and the failures
    already show as degraded or failing. A plugin that never ran is not stale
    but unknown.
    """
    if row.external:
        return ingest.is_stale(row, missed=missed, now=now)
    if not row.enabled or row.consecutive_failures or row.last_run_at is None:
        return False
    return now - row.last_run_at > timedelta(seconds=interval * missed + timeout)


def state_of(
    manager: PluginManager,
    row: Plugin,
    metadata: PluginMetadata | None = None,
    *,
    now: datetime | None = None,
) -> PluginState:
    """The one state of the plugin of ``row`` (see :func:`unity_sdk.plugin_state`)."""
    metadata = metadata or plugin_metadata(manager, row)
    stale = is_stale(
        row,
        interval=expected_interval(manager, row, metadata),
        missed=manager.settings.stale_after_missed,
        timeout=metadata.timeout if metadata is not None else 0.0,
        now=now or utcnow(),
    )
    return plugin_state(
        loaded=row.external or row.id in manager.plugins,
        enabled=row.enabled,
        # Only the states runs give are stored; anything else is treated as no run yet.
        runs=row.state if row.state in RUN_STATES else PluginState.UNKNOWN,
        health=row.health_status,
        stale=stale,
    )


def _interval(manager: PluginManager, row: Plugin, metadata: PluginMetadata | None) -> float | None:
    """How often it runs: the hub's timer, an agent's instance's config or its
    plugin's default (its agent runs it so), else what an external plugin set."""
    managed = manager.plugins.get(row.id)
    if managed is not None:
        return managed.interval
    if row.host_id is not None:
        return expected_interval(manager, row, metadata)
    configured = (row.config or {}).get("interval")
    return float(configured) if configured is not None else None


def plugin_view(manager: PluginManager, row: Plugin, *, now: datetime | None = None) -> PluginView:
    """The plugin of ``row`` as every list shows it."""
    managed = manager.plugins.get(row.id)
    metadata = plugin_metadata(manager, row)
    return PluginView(
        id=row.id,
        name=row.name,
        version=row.version,
        description=row.description,
        category=row.category,
        enabled=row.enabled,
        external=row.external,
        loaded=managed is not None,
        state=state_of(manager, row, metadata, now=now),
        health=HealthView(
            HealthState(row.health_status), row.health_message, row.health_checked_at
        ),
        interval=_interval(manager, row, metadata),
        run_count=row.run_count,
        last_run_at=row.last_run_at,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        declared=metadata,
    )


def _masked(metadata: PluginMetadata | None, config: dict[str, Any]) -> dict[str, Any]:
    if metadata is None:
        # Without a schema no field is known not to be secret.
        return dict.fromkeys(config, MASK)
    return mask_secrets(metadata, config)


def detail_of(
    manager: PluginManager, row: Plugin, *, now: datetime | None = None
) -> PluginDetailView:
    """The detail of the plugin of ``row`` (as just read or written)."""
    view = plugin_view(manager, row, now=now)
    managed = manager.plugins.get(row.id)
    return PluginDetailView(
        **{f.name: getattr(view, f.name) for f in dataclasses.fields(PluginView)},
        author=row.author,
        metadata=row.plugin_metadata,
        config=_masked(view.declared, row.config or {}),
        consecutive_failures=row.consecutive_failures,
        reload_error=managed.reload_error if managed else None,
        last_seen_at=row.last_seen_at,
        health_details=row.health_details,
    )


async def plugin_detail(
    session: AsyncSession, manager: PluginManager, plugin_id: str
) -> PluginDetailView:
    """Everything about one plugin; ``PluginNotFoundError`` when the registry has no such id."""
    row = await registry.get_plugin(session, plugin_id)
    if row is None:
        raise PluginNotFoundError(plugin_id)
    return detail_of(manager, row)


async def plugin_page(
    session: AsyncSession,
    manager: PluginManager,
    *,
    category: str | None = None,
    enabled: bool | None = None,
    external: bool | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[PluginView], str | None]:
    """One page of plugins in id order, and the cursor of the next page (None at the end)."""
    rows = await registry.list_plugins(
        session, category=category, enabled=enabled, external=external, after=after, limit=limit + 1
    )
    now = utcnow()
    views = [plugin_view(manager, row, now=now) for row in rows[:limit]]
    return views, (rows[limit - 1].id if len(rows) > limit else None)


async def every_plugin(
    session: AsyncSession, manager: PluginManager, *, batch: int = 500
) -> list[PluginView]:
    """Every registered plugin, in id order (read ``batch`` registry rows at a time)."""
    views: list[PluginView] = []
    after: str | None = None
    while True:
        page, after = await plugin_page(session, manager, after=after, limit=batch)
        views += page
        if after is None:
            return views


async def external_plugins(session: AsyncSession, manager: PluginManager) -> list[PluginDetailView]:
    """Every external plugin in detail (when each last reported, its health details).

    Plugin instances of agents' hosts are not among them: their host's page lists them."""
    rows = await registry.list_plugins(session, external=True, limit=1_000_000)
    now = utcnow()
    return [detail_of(manager, row, now=now) for row in rows if row.host_id is None]


def load_failures(manager: PluginManager) -> Sequence[LoadFailure]:
    """The plugins found but not loaded (import or validation failed), and why."""
    return list(manager.failures.values())
