"""The plugin registry: what is loaded, what failed to load, and every plugin's metadata.

Loaded plugins (built-ins and entry points) are synced into the ``plugins``
table and kept here as :class:`~unity.plugins.runtime.ManagedPlugin` records;
external plugins exist only as rows. :meth:`PluginRegistry.metadata_for` is the
one source of a plugin's metadata, whichever kind it is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins import output
from unity.plugins.loader import (
    LoadedPlugin,
    LoadFailure,
    PluginLoader,
    remember_installed_packages,
)
from unity.plugins.runtime import ManagedPlugin, PluginNotFoundError, PluginStateError
from unity.plugins.stats import HubStats
from unity.plugins.vault import ConfigVault
from unity.plugins.worker import WorkerPool
from unity.settings import Settings
from unity.storage import registry as rows
from unity.storage.db import Database
from unity.storage.models import Plugin
from unity_sdk import (
    RUN_STATES,
    ConfigError,
    HealthState,
    PluginMetadata,
    PluginState,
    ValidatedConfig,
    plugin_state,
    validate_config,
)

__all__ = ["PluginRegistry"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Synced:
    """What registering a plugin read and decided in the database."""

    config: ValidatedConfig
    enabled: bool
    consecutive_failures: int
    runs: PluginState
    health: HealthState | None
    created: bool


def _known(row: Plugin) -> tuple[PluginState, HealthState | None]:
    """What a stored row says about a plugin's runs and health (from before a restart)."""
    runs = PluginState(row.state) if row.state in RUN_STATES else PluginState.UNKNOWN
    health = row.health_status
    known = health in HealthState.__members__.values() and health != HealthState.UNKNOWN
    return runs, HealthState(health) if known else None


class PluginRegistry:
    """Loads plugins, keeps them, and answers what the hub knows about any plugin."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        vault: ConfigVault,
        stats: HubStats,
        loader: PluginLoader | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.vault = vault
        self.stats = stats
        self.loader = loader or PluginLoader(skip=settings.disabled_plugins)
        self.workers = WorkerPool(
            settings.plugin_loop_threads,
            stall_seconds=settings.plugin_stall_seconds,
            dedicated=settings.plugin_dedicated_threads,
        )
        self.plugins: dict[str, ManagedPlugin] = {}
        self.failures: dict[str, LoadFailure] = {}
        # Rows this hub wrote since the hub sync last looked (see hubsync).
        self.written: set[str] = set()

    async def load(self) -> list[ManagedPlugin]:
        """Discover and register every plugin (bounded by ``plugin_load_timeout``).

        On the hub's first start, plugins in ``autoenable`` are enabled.
        """
        remember_installed_packages()
        # discover() returns by its deadline; threads stuck in plugin code are abandoned.
        loaded, failures = await asyncio.to_thread(
            self.loader.discover, self.settings.plugin_load_timeout
        )
        self._failed(failures)
        async with self.db.session() as session:
            first_start = not await rows.list_plugins(session, limit=1)
        await self._register_all(loaded, autoenable=first_start)
        await self.vault.seal_external_configs(self.db)
        return list(self.plugins.values())

    async def rescan(self) -> tuple[list[ManagedPlugin], list[LoadFailure]]:
        """Load plugins installed since start-up (new entry points), disabled."""
        loaded, failures = await asyncio.to_thread(
            self.loader.discover, self.settings.plugin_load_timeout, known=set(self.plugins)
        )
        added: list[ManagedPlugin] = []
        for plugin in loaded:
            added.append(await self.register(plugin, autoenable=False))
            self.failures.pop(plugin.id, None)
            log.info("found new plugin %s %s", plugin.id, plugin.metadata.version)
        self._failed(failures)
        return added, failures

    def _failed(self, failures: list[LoadFailure]) -> None:
        for failure in failures:
            if failure.name not in self.failures:
                self.stats.load_failures.inc()
            self.failures[failure.name] = failure

    async def register(self, plugin: LoadedPlugin, *, autoenable: bool) -> ManagedPlugin:
        """Sync a loaded plugin's row, validate its stored config, and keep it."""
        [managed] = await self._register_all([plugin], autoenable=autoenable)
        return managed

    async def _register_all(
        self, plugins: list[LoadedPlugin], *, autoenable: bool
    ) -> list[ManagedPlugin]:
        """:meth:`register` for many plugins in one transaction (one commit at start,
        not one per plugin). Rows are locked in id order, as every hub does."""
        synced: dict[str, _Synced] = {}
        async with self.db.session() as session:
            for plugin in sorted(plugins, key=lambda p: p.id):
                synced[plugin.id] = await self._sync(session, plugin, autoenable=autoenable)
        return [self._keep(plugin, synced[plugin.id]) for plugin in plugins]

    async def _sync(
        self, session: AsyncSession, plugin: LoadedPlugin, *, autoenable: bool
    ) -> _Synced:
        row, created = await rows.sync_plugin(
            session,
            metadata=plugin.metadata,
            enable_if_new=autoenable and plugin.id in self.settings.autoenable,
        )
        # Secrets typed into the config are sealed at rest (also those stored
        # before the hub sealed them); the plugin gets them open.
        self.vault.seal_row(row, plugin.metadata)
        stored = dict(row.config or {})
        try:
            validated = validate_config(plugin.metadata, self.vault.opened(plugin.id, stored))
        except ConfigError as exc:
            readable = self.vault.readable(plugin.id, stored)
            # A plugin with required settings starts unconfigured; only a stored
            # config that stopped validating (the schema changed) is an error.
            validated = ValidatedConfig(readable, {}, None, None)
            if readable or row.enabled:
                log.error("stored config of %s does not validate: %s", plugin.id, exc.errors)
                row.enabled = False
                row.last_error = f"stored config is invalid: {exc.errors}"
        runs, health = _known(row)
        return _Synced(validated, row.enabled, row.consecutive_failures, runs, health, created)

    def _keep(self, plugin: LoadedPlugin, synced: _Synced) -> ManagedPlugin:
        force_process = plugin.id in self.settings.process_isolation or (
            self.settings.isolate_entry_points and plugin.source == "entry_point"
        )
        managed = ManagedPlugin(
            loaded=plugin,
            instance=plugin.cls(config=synced.config.plugin),
            worker=self.workers.worker(plugin.id),
            config=synced.config,
            enabled=synced.enabled,
            consecutive_failures=synced.consecutive_failures,
            force_process=force_process,
            runs=synced.runs,
            health=synced.health,
        )
        self.plugins[plugin.id] = managed
        output.guard.register(plugin.id, self.settings.plugin_output_bytes)
        if force_process:
            log.info("plugin %s runs in process isolation (set by the settings)", plugin.id)
        if synced.created:
            log.info("registered new plugin %s %s", plugin.id, plugin.metadata.version)
        return managed

    # -- lookups ---------------------------------------------------------------------

    def get(self, plugin_id: str) -> ManagedPlugin:
        """A loaded plugin; ``PluginStateError`` if it failed to load, else not found."""
        if plugin_id in self.plugins:
            return self.plugins[plugin_id]
        if plugin_id in self.failures:
            raise PluginStateError(
                f"plugin {plugin_id!r} failed to load: {self.failures[plugin_id].error}"
            )
        raise PluginNotFoundError(plugin_id)

    async def row(self, plugin_id: str) -> Plugin:
        async with self.db.session() as session:
            row = await rows.get_plugin(session, plugin_id)
        if row is None:
            raise PluginNotFoundError(plugin_id)
        return row

    async def external(self, plugin_id: str) -> tuple[Plugin, PluginMetadata] | None:
        """The registry row and metadata of an external plugin, None for in-hub ones."""
        if plugin_id in self.plugins or plugin_id in self.failures:
            return None
        row = await self.row(plugin_id)
        if not row.external:
            raise PluginStateError(
                f"the code of plugin {plugin_id!r} is not loaded (was its package removed?)"
            )
        return row, PluginMetadata.model_validate(row.plugin_metadata)

    async def metadata_for(self, plugin_id: str) -> PluginMetadata:
        """The metadata of a loaded plugin, else as stored in the registry."""
        if plugin_id in self.plugins:
            return self.plugins[plugin_id].metadata
        row = await self.row(plugin_id)
        return PluginMetadata.model_validate(row.plugin_metadata)

    async def resync(self, metadata: PluginMetadata) -> None:
        """Store new metadata of a loaded plugin (after a reload)."""
        async with self.db.session() as session:
            await rows.sync_plugin(session, metadata=metadata)

    async def adopt(self, managed: ManagedPlugin) -> None:
        """Take a plugin's run state from its row: another hub ran it until now."""
        row = await self.row(managed.id)
        managed.consecutive_failures = row.consecutive_failures
        managed.runs, managed.health = _known(row)
        managed.state = plugin_state(
            enabled=managed.enabled, runs=managed.runs, health=managed.health
        )

    async def update_row(self, plugin_id: str, **values: Any) -> None:
        async with self.db.session() as session:
            row = await rows.get_plugin(session, plugin_id)
            if row is None:
                raise PluginNotFoundError(plugin_id)
            for key, value in values.items():
                setattr(row, key, value)
        self.written.add(plugin_id)
