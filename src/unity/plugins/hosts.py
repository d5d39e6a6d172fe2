"""Hosts: the hub's own machine, the machines agents run on, and their plugin instances.

What the hub does to hosts, in one place:

- :func:`ensure_hub_host`: the hub's own host row (kind "hub", id from
  ``UNITY_HOST_ID``), written at start-up with this machine's platform.
- :func:`add_plugin`: a catalogue plugin on a host. On an agent's host it is a
  new plugin *instance*: a ``plugins`` row ``"{plugin}@{host}"`` (external,
  ``host_id`` and ``plugin_type`` set, the catalogue plugin's metadata), so it
  gets state, health, history and alerts through the external-plugin paths.
  On the hub's own host it configures and enables the built-in itself.
- :func:`delete_instance`, :func:`remove_host`: take an instance or a whole
  host away (a host's agent keys are revoked first).
- :func:`host_state`: the one rule for a host's state.

The catalogue is :data:`unity_catalogue.BUILTIN_PLUGINS` (:func:`catalogue`):
what every agent can run, whatever the hub itself loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from unity import __version__
from unity.auth import agents as agent_auth
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.dialects import dialect_insert
from unity.storage.models import Host, Plugin
from unity.storage.registry import metadata_document
from unity.storage.types import utcnow
from unity_catalogue.platform import host_platform
from unity_sdk import (
    INTERVAL_KEY,
    LOCAL_TARGET,
    ConfigError,
    PluginMetadata,
    PluginState,
    check_plugin_class,
    instance_id,
    validate_config,
)

__all__ = [
    "AGENT",
    "HUB",
    "HostLookupError",
    "add_plugin",
    "catalogue",
    "catalogue_metadata",
    "configure_hub_plugin",
    "delete_instance",
    "ensure_hub_host",
    "get_host",
    "host_state",
    "instance_row",
    "remove_host",
    "this_machine",
    "worst_state",
]

log = logging.getLogger(__name__)

HUB = "hub"
AGENT = "agent"
# The plugins table's id column.
_MAX_PLUGIN_ID = 64

# Worst last: what a host shows when its instances disagree. Disabled and
# not-loaded instances are left out: they are choices, not the host's health.
_SEVERITY = (
    PluginState.NOT_APPLICABLE,
    PluginState.HEALTHY,
    PluginState.UNKNOWN,
    PluginState.DEGRADED,
    PluginState.STALE,
    PluginState.UNHEALTHY,
    PluginState.FAILING,
)


class HostLookupError(LookupError):
    """No such host (or no such proposal on it); the message says which."""


# -- the hub's own host ----------------------------------------------------------------


def this_machine(hostname: str) -> dict[str, Any]:
    """What the host card shows about the machine the hub runs on (a ``HostPlatform``,
    described as an agent describes its host)."""
    return host_platform(hostname, agent_version=__version__).model_dump(mode="json")


async def ensure_hub_host(db: Database, settings: Settings) -> None:
    """Create or refresh the hub's own host row (kind "hub", id ``settings.host_id``).

    An agent that holds the id already keeps it: the hub logs why its own card
    is missing instead of taking another machine's row over.
    """
    now = utcnow()
    described = this_machine(settings.hostname)
    async with db.session() as session:
        insert = dialect_insert(session.get_bind().dialect.name)
        # Hubs sharing one PostgreSQL may start at once: the second insert does nothing.
        await session.execute(
            insert(Host)
            .values(
                id=settings.host_id,
                kind=HUB,
                hostname=settings.hostname,
                platform=described,
                status={},
                poll_seconds=0.0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = await session.get(Host, settings.host_id, with_for_update=True)
        assert row is not None
        if row.kind != HUB:
            log.error(
                "host id %r belongs to an agent; set UNITY_HOST_ID to give the hub's own "
                "host another id",
                settings.host_id,
            )
            return
        row.hostname = settings.hostname
        row.platform = described
        row.last_seen_at = now


# -- the catalogue ---------------------------------------------------------------------

_catalogue: dict[str, PluginMetadata] = {}


def catalogue() -> dict[str, PluginMetadata]:
    """Every catalogue plugin's metadata by id (read once, checked like the loader does)."""
    if not _catalogue:
        from unity_catalogue import BUILTIN_PLUGINS

        for cls in BUILTIN_PLUGINS:
            metadata = check_plugin_class(cls)
            _catalogue[metadata.id] = metadata
    return _catalogue


def catalogue_metadata(plugin: str) -> PluginMetadata:
    """A catalogue plugin's metadata; ``ConfigError`` (422) naming ``plugin`` if there is none."""
    found = catalogue().get(plugin)
    if found is None:
        message = f"no catalogue plugin {plugin!r}; see `unity plugins list` for the ids"
        raise ConfigError(message, [{"loc": ["plugin"], "msg": message}])
    return found


# -- hosts and instances -----------------------------------------------------------------


def instance_row(
    metadata: PluginMetadata, host_id: str, *, config: dict[str, Any], enabled: bool
) -> Plugin:
    """The registry row of catalogue plugin ``metadata`` run by the agent of ``host_id``."""
    return Plugin(
        id=instance_id(metadata.id, host_id),
        name=metadata.name,
        version=metadata.version,
        description=metadata.description,
        author=metadata.author,
        category=metadata.category.value,
        plugin_metadata=metadata_document(metadata),
        enabled=enabled,
        external=True,
        config=config,
        host_id=host_id,
        plugin_type=metadata.id,
    )


async def get_host(session: AsyncSession, host_id: str) -> Host:
    row = await session.get(Host, host_id)
    if row is None:
        raise HostLookupError(f"no host with id {host_id!r}")
    return row


def _with_interval(config: Mapping[str, Any], interval: float | None) -> dict[str, Any]:
    raw = dict(config)
    if interval is not None:
        raw[INTERVAL_KEY.name] = interval
    return raw


async def add_plugin(
    manager: PluginManager,
    host_id: str,
    plugin: str,
    config: Mapping[str, Any],
    *,
    interval: float | None = None,
    enabled: bool = True,
) -> str:
    """Run catalogue plugin ``plugin`` on the host; returns the plugin id it runs as.

    ``HostLookupError`` for an unknown host, ``ConfigError`` for an unknown plugin
    or a config its schema refuses (nothing is written then),
    ``PluginStateError`` (409) when the host already runs it.
    """
    async with manager.db.session() as session:
        host = await get_host(session, host_id)
        kind = host.kind
    raw = _with_interval(config, interval)
    if kind == HUB:
        return await configure_hub_plugin(manager, plugin, raw, enable=enabled)
    return await _create_instance(manager, host_id, catalogue_metadata(plugin), raw, enabled)


async def _create_instance(
    manager: PluginManager,
    host_id: str,
    metadata: PluginMetadata,
    raw: dict[str, Any],
    enabled: bool,
) -> str:
    plugin_id = instance_id(metadata.id, host_id)
    if len(plugin_id) > _MAX_PLUGIN_ID:
        message = f"{plugin_id!r} is longer than {_MAX_PLUGIN_ID} characters"
        raise ConfigError(message, [{"loc": ["plugin"], "msg": message}])
    validated = validate_config(metadata, raw)
    if any(target != LOCAL_TARGET for target in validated.targets):
        message = (
            "targets are servers the hub reaches over SSH; an instance on an agent "
            "collects on its own host"
        )
        raise ConfigError(message, [{"loc": ["targets"], "msg": message}])
    await manager.links.check(metadata, validated)
    stored = manager.vault.sealed(metadata, validated.stored, plugin_id=plugin_id)
    taken = PluginStateError(f"host {host_id!r} already runs {metadata.id!r} as {plugin_id!r}")
    async with manager.db.session() as session:
        if await session.get(Plugin, plugin_id) is not None:
            raise taken
        session.add(instance_row(metadata, host_id, config=stored, enabled=enabled))
        try:
            await session.flush()
        except IntegrityError as exc:
            # PostgreSQL: the same instance was added concurrently, or the host
            # was removed in the meantime.
            raise taken from exc
    log.info("plugin %s added on host %s as %s", metadata.id, host_id, plugin_id)
    return plugin_id


async def configure_hub_plugin(
    manager: PluginManager, plugin: str, raw: Mapping[str, Any], *, enable: bool = True
) -> str:
    """Give a plugin of the hub its config and enable it, through the manager.

    ``PluginStateError`` (409) when it is already enabled with another config:
    a proposal or a second "add" must not silently change what already runs.
    """
    managed = manager.plugins.get(plugin)
    if managed is None:
        message = f"the hub has no plugin {plugin!r} loaded"
        raise ConfigError(message, [{"loc": ["plugin"], "msg": message}])
    wanted = validate_config(managed.metadata, raw, previous=managed.config.stored)
    if managed.enabled:
        if wanted.stored != managed.config.stored:
            raise PluginStateError(
                f"plugin {plugin!r} is already enabled on the hub with another config; "
                "change it with PUT /api/plugins/v2/{id}/config instead"
            )
        return plugin
    await manager.set_config(plugin, wanted.stored)
    if enable:
        await manager.enable(plugin)
    return plugin


async def delete_instance(manager: PluginManager, plugin_id: str) -> None:
    """Remove a plugin instance of an agent's host with its history.

    ``PluginStateError`` (409) for anything else: the hub's own plugins are
    disabled, not deleted."""
    async with manager.db.session() as session:
        row = await session.get(Plugin, plugin_id)
        if row is None:
            raise PluginNotFoundError(plugin_id)
        if row.host_id is None:
            raise PluginStateError(
                f"{plugin_id!r} is not a plugin instance on an agent's host; disable it instead"
            )
        await session.delete(row)
    log.info("plugin instance %s removed", plugin_id)


async def remove_host(manager: PluginManager, host_id: str) -> None:
    """Take a host away: revoke its agent's keys, then delete it with its instances
    and proposals (the foreign keys cascade). The hub's own host stays (409)."""
    if host_id == manager.settings.host_id:
        raise PluginStateError("the hub's own host cannot be removed")
    async with manager.db.session() as session:
        await get_host(session, host_id)
        # A revocation, not only the cascade: it makes this hub forget the key at once.
        await agent_auth.revoke_agent_keys(session, host_id)
        # Explicit, so the instances' histories go on SQLite too without relying on
        # the ORM to load them.
        await session.execute(delete(Plugin).where(Plugin.host_id == host_id))
        await session.execute(delete(Host).where(Host.id == host_id))
    log.info("host %s removed with its instances; its agent keys are revoked", host_id)


# -- the state rule --------------------------------------------------------------------


def worst_state(states: Iterable[PluginState]) -> PluginState | None:
    """The most serious of ``states`` (None when none of them counts)."""
    counted = [s for s in states if s in _SEVERITY]
    return max(counted, key=_SEVERITY.index) if counted else None


def host_state(
    *,
    kind: str,
    last_seen_at: datetime | None,
    poll_seconds: float,
    instances: Iterable[tuple[PluginState, float]],
    missed: int,
    now: datetime,
) -> PluginState:
    """The one state of a host, from ``(state, interval)`` of each of its plugins.

    An agent's host is stale when the agent has not been heard from for
    ``missed`` times the longer of its poll period and its shortest enabled
    instance's interval. Otherwise it is its worst instance's state; healthy when every
    instance says "nothing to watch" or it has none, unknown when its agent
    never called.
    """
    listed = list(instances)
    if kind == AGENT and last_seen_at is not None:
        running = [interval for state, interval in listed if state in _SEVERITY]
        shortest = min(running, default=poll_seconds)
        limit = timedelta(seconds=missed * max(poll_seconds, shortest))
        if now - last_seen_at > limit:
            return PluginState.STALE
    worst = worst_state(state for state, _ in listed)
    if worst is not None and worst is not PluginState.NOT_APPLICABLE:
        return worst
    if kind == AGENT and last_seen_at is None:
        return PluginState.UNKNOWN
    return PluginState.HEALTHY
