"""The plugin manager: the one object the API, CLI and dashboard talk to.

It composes the parts and carries out what is asked of plugins:

- :class:`~unity.plugins.registry.PluginRegistry`: what is loaded and every
  plugin's metadata;
- one :class:`~unity.plugins.supervisor.Supervisor` per loaded plugin: its
  timer, runs, recording and health;
- :class:`~unity.plugins.vault.ConfigVault`: sealed secrets in stored configs;
- :class:`~unity.plugins.links.ConfigLinks`: credential references and targets;
- :class:`~unity.plugins.leases.Leases`, :class:`~unity.plugins.hubsync.HubSync`:
  several hubs on one PostgreSQL (each run on one hub; changes reach all).

No plugin can hold the hub: loading is bounded (``plugin_load_timeout``),
start-up does not wait for slow ``on_enable`` hooks, output and documents are
capped per run, and :meth:`PluginManager.stop` returns within
``shutdown_grace_seconds`` whatever the plugins do.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from unity.credentials import CredentialStore, Keyring
from unity.plugins import config as plugin_config
from unity.plugins import output
from unity.plugins.hubsync import HubSync, reconfigure
from unity.plugins.leases import Leases
from unity.plugins.links import ConfigLinks
from unity.plugins.loader import LoadFailure, PluginLoader
from unity.plugins.recorder import RunRecorder
from unity.plugins.registry import PluginRegistry
from unity.plugins.runtime import (
    ManagedPlugin,
    PluginNotFoundError,
    PluginStateError,
    RunResult,
)
from unity.plugins.scheduler import Clock, Scheduler
from unity.plugins.stats import HubStats
from unity.plugins.supervisor import Runtime, Supervisor, release
from unity.plugins.vault import ConfigVault
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import Plugin
from unity_sdk import HealthStatus, PluginMetadata, ValidatedConfig, validate_config

__all__ = ["PluginManager"]

log = logging.getLogger(__name__)

# Seconds of the shutdown grace period kept for closing the database and exiting.
_CLOSE_RESERVE = 1.0


class PluginManager:
    """Loads, enables, runs, configures, reloads and stops plugins."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        loader: PluginLoader | None = None,
        *,
        keyring: Keyring | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.stats = HubStats()
        self.vault = ConfigVault(settings, keyring)
        self.registry = PluginRegistry(db, settings, self.vault, self.stats, loader)
        self.recorder = RunRecorder(db, self.stats)
        self.links = ConfigLinks(db, settings, self.vault)
        self.scheduler = Scheduler(
            jitter=settings.scheduler_jitter,
            on_lateness=self.stats.lateness.observe,
            clock=clock,
        )
        self.leases = Leases(db, settings)
        self.sync = HubSync(self)
        self.runtime = Runtime(
            settings,
            self.links,
            self.recorder,
            self.scheduler,
            self.stats,
            self.registry,
            self.leases,
        )
        self.supervisors: dict[str, Supervisor] = {}
        self._background: set[asyncio.Future[Any]] = set()

    # -- what the hub knows ------------------------------------------------------------

    @property
    def plugins(self) -> dict[str, ManagedPlugin]:
        return self.registry.plugins

    @property
    def failures(self) -> dict[str, LoadFailure]:
        return self.registry.failures

    @property
    def credentials(self) -> CredentialStore:
        return self.vault.credentials(self.db)

    def get(self, plugin_id: str) -> ManagedPlugin:
        managed = self.plugins.get(plugin_id)
        if managed is None:
            raise PluginNotFoundError(plugin_id)
        return managed

    def supervisor(self, plugin_id: str) -> Supervisor:
        """The supervisor of a loaded plugin (``PluginStateError``/not found otherwise)."""
        self.registry.get(plugin_id)
        return self.supervisors[plugin_id]

    async def row(self, plugin_id: str) -> Plugin:
        return await self.registry.row(plugin_id)

    async def metadata_for(self, plugin_id: str) -> PluginMetadata:
        return await self.registry.metadata_for(plugin_id)

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Load plugins, sync the registry, activate and schedule the enabled ones.

        Returns within about twice ``plugin_load_timeout`` plus the database work:
        ``on_enable`` hooks still running by then go on in the background (their
        plugin is scheduled when the hook returns).
        """
        output.guard.install()
        for managed in await self.registry.load():
            self._supervise(managed)
        activations = [
            asyncio.ensure_future(self._activate(managed, at_start=True))
            for managed in self.plugins.values()
            if managed.enabled
        ]
        if activations:
            _, slow = await asyncio.wait(activations, timeout=self.settings.plugin_load_timeout)
            for task in slow:
                self._keep(task)
            if slow:
                log.warning("%d plugins are still in on_enable; starting without them", len(slow))
        if self.leases.shared:
            self._keep(asyncio.create_task(self.sync.run(), name="hub-sync"))
        log.info(
            "hub %s: %d plugins loaded, %d enabled, %d failed to load",
            self.leases.hub_id,
            len(self.plugins),
            sum(m.enabled for m in self.plugins.values()),
            len(self.failures),
        )

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _supervise(self, managed: ManagedPlugin) -> Supervisor:
        supervisor = self.supervisors[managed.id] = Supervisor(managed, self.runtime)
        managed.state = self.recorder.state_of(managed)
        return supervisor

    async def rescan(self) -> tuple[list[str], list[LoadFailure]]:
        """Load plugins installed since start-up (new entry points); return the ids
        added and what failed to load. New plugins start disabled."""
        added, failures = await self.registry.rescan()
        for managed in added:
            self._supervise(managed)
        return [m.id for m in added], failures

    async def stop(self, grace: float | None = None) -> None:
        """Stop scheduling and the plugins within ``grace`` seconds (default: the setting).

        Runs in flight get the first half of the period, then are cancelled
        (an isolated child is killed); ``on_disable`` hooks run concurrently in
        what is left. A plugin whose thread is still blocked gets no hook and
        its daemon thread is abandoned: it cannot keep the process alive.
        """
        loop = asyncio.get_running_loop()
        grace = self.settings.shutdown_grace_seconds if grace is None else max(0.0, grace)
        deadline = loop.time() + grace
        await self.scheduler.stop(grace=grace / 2)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await release(
            list(self.supervisors.values()), self.registry.workers, deadline - _CLOSE_RESERVE
        )
        await self.leases.release_all()
        output.guard.uninstall()

    async def _activate(self, managed: ManagedPlugin, *, at_start: bool = False) -> None:
        try:
            await self.supervisors[managed.id].activate()
        except PluginStateError as exc:
            if not at_start:
                raise
            log.error("plugin %s could not start: %s", managed.id, exc)

    # -- enable / disable / run ------------------------------------------------------

    async def enable(self, plugin_id: str) -> None:
        """Enable and schedule at once; ``ConfigError`` if its config is incomplete."""
        external = await self.registry.external(plugin_id)
        if external is not None:
            row, metadata = external
            await plugin_config.validate_foreign(
                metadata,
                self.vault.opened(plugin_id, row.config),
                timeout=self.settings.schema_check_seconds,
            )
            await self.registry.update_row(plugin_id, enabled=True)
            return
        managed = self.registry.get(plugin_id)
        validate_config(managed.metadata, managed.config.stored)
        # Enabled before activation, so the first scheduled run is not dropped.
        managed.enabled = True
        if not managed.active:
            try:
                await self._activate(managed)
            except PluginStateError:
                managed.enabled = False
                raise
        await self.registry.update_row(plugin_id, enabled=True, last_error=None)
        await self.recorder.settle(managed, "enabled")

    async def disable(self, plugin_id: str) -> None:
        if await self.registry.external(plugin_id) is not None:
            await self.registry.update_row(plugin_id, enabled=False)
            return
        managed = self.registry.get(plugin_id)
        await self.supervisors[plugin_id].deactivate()
        managed.enabled = False
        await self.leases.release_run(plugin_id)
        await self.registry.update_row(plugin_id, enabled=False)
        await self.recorder.settle(managed, "disabled")

    async def execute(self, plugin_id: str) -> RunResult:
        """Run now (whether enabled or not) and return the recorded result."""
        if await self.registry.external(plugin_id) is not None:
            raise PluginStateError(
                f"{plugin_id!r} is an external plugin: it collects on its own host"
            )
        managed = self.registry.get(plugin_id)
        if managed.worker.busy and not managed.run_lock.locked():
            # A timed-out run is still stuck in blocking code on the worker thread.
            raise PluginStateError(f"plugin {plugin_id!r} is still busy with an earlier run")
        # A run in progress is waited for (it ends by its timeout), then this one runs.
        return await self.supervisors[plugin_id].run("manual")

    async def check_health(self, plugin_id: str) -> HealthStatus:
        """Run the plugin's health check now and persist the answer."""
        return await self.supervisor(plugin_id).check_health()

    # -- config and reload -------------------------------------------------------------

    async def set_config(self, plugin_id: str, raw: Any) -> ValidatedConfig:
        """Validate, persist, apply and announce a new config.

        Raises ``ConfigError`` (nothing saved) when it does not validate.
        """
        external = await self.registry.external(plugin_id)
        if isinstance(raw, dict):
            # A merge patch carries the stored (sealed) values of the fields it keeps.
            raw = self.vault.opened(plugin_id, raw)
        if external is not None:
            row, metadata = external
            validated = await plugin_config.validate_foreign(
                metadata,
                raw,
                previous=self.vault.readable(plugin_id, row.config),
                timeout=self.settings.schema_check_seconds,
            )
            await self.links.check(metadata, validated)
            await self.registry.update_row(
                plugin_id, config=self.vault.sealed(metadata, validated.stored, plugin_id=plugin_id)
            )
            return validated
        managed = self.registry.get(plugin_id)
        validated = validate_config(managed.metadata, raw, previous=managed.config.stored)
        await self.links.check(managed.metadata, validated)
        await self.registry.update_row(
            plugin_id, config=self.vault.sealed(managed.metadata, validated.stored)
        )
        await reconfigure(self.supervisors[plugin_id], validated)
        return validated

    async def reload(self, plugin_id: str) -> str | None:
        """Re-import a plugin's code and swap the live instance.

        Returns None on success, else the error; on error the old instance
        keeps running untouched.
        """
        return await self.supervisor(plugin_id).reload()
