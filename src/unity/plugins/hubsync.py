"""Hub sync: plugins enabled, disabled or reconfigured through one hub follow on the others.

Each hub keeps its plugins' enabled state and config in memory, read at
start. With several hubs on one PostgreSQL database a change made through
one must reach the rest: every ``hub_sync_seconds`` each hub reads, per
loaded plugin, the enabled flag and a digest of the stored config (one small
query), and for the plugins whose row changed since its previous look, or
that this hub wrote itself since, applies what differs from its memory: it
starts or stops the plugin's timer, or gives the plugin its new config
(rescheduling it when the interval changed). A hub that made the change itself
finds nothing different and does nothing; a change of its own still under way
(memory changed, row not yet written) is left alone.

On SQLite there is one hub, and no sync runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from unity.plugins.runtime import PluginStateError
from unity.plugins.supervisor import Supervisor
from unity.storage import registry as rows
from unity.storage.db import is_unavailable
from unity_sdk import ConfigError, PluginError, ValidatedConfig, validate_config

if TYPE_CHECKING:
    from unity.plugins.manager import PluginManager

__all__ = ["HubSync", "reconfigure"]

log = logging.getLogger(__name__)


async def reconfigure(supervisor: Supervisor, validated: ValidatedConfig) -> None:
    """Give a loaded plugin a new (validated) config; reschedule it if its interval changed."""
    managed, links = supervisor.managed, supervisor.rt.links
    old_interval = managed.interval
    managed.config = validated
    await links.close_remotes(managed)
    managed.instance.config = validated.plugin
    try:
        await links.apply_credentials(managed)
    except PluginError as exc:
        log.warning("plugin %s: %s", managed.id, exc)
    await supervisor.hook("on_config_change", managed.instance.config)
    if managed.enabled and managed.active and managed.interval != old_interval:
        supervisor.schedule()


class HubSync:
    """Applies to this hub the plugin changes other hubs stored."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self._seen: dict[str, tuple[bool, str]] = {}

    async def run(self) -> None:
        """Pass after pass until cancelled."""
        every = self.manager.settings.hub_sync_seconds
        while True:
            await asyncio.sleep(every)
            try:
                await self.sync()
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("hub sync failed")

    async def sync(self) -> list[str]:
        """One pass; the ids of the plugins it changed on this hub."""
        manager = self.manager
        # Taken before the rows are read: a write after this is looked at next pass.
        written, manager.registry.written = manager.registry.written, set()
        async with manager.db.session() as session:
            current = await rows.settings_digests(session, list(manager.plugins))
        changed = []
        for plugin_id, seen in current.items():
            if self._seen.get(plugin_id) == seen and plugin_id not in written:
                continue
            try:
                if await self._apply(plugin_id):
                    changed.append(plugin_id)
            except Exception:
                manager.registry.written.add(plugin_id)  # looked at again next pass
                raise
            # Only after applying: a pass that failed midway is retried by the next.
            self._seen[plugin_id] = seen
        return changed

    async def _apply(self, plugin_id: str) -> bool:
        manager = self.manager
        managed = manager.plugins[plugin_id]
        supervisor = manager.supervisors[plugin_id]
        row = await manager.registry.row(plugin_id)
        changed = False
        if manager.vault.readable(plugin_id, row.config or {}) != managed.config.stored:
            try:
                validated = validate_config(
                    managed.metadata, manager.vault.opened(plugin_id, row.config or {})
                )
            except ConfigError as exc:
                log.warning("stored config of %s does not validate: %s", plugin_id, exc.errors)
            else:
                await reconfigure(supervisor, validated)
                log.info("plugin %s: config changed through another hub", plugin_id)
                changed = True
        if row.enabled != managed.enabled:
            managed.enabled = row.enabled
            if row.enabled and not managed.active:
                try:
                    await supervisor.activate()
                except PluginStateError as exc:
                    log.error("plugin %s could not start: %s", plugin_id, exc)
            elif not row.enabled:
                await supervisor.deactivate()
                await manager.leases.release_run(plugin_id)
            managed.state = manager.recorder.state_of(managed)
            log.info(
                "plugin %s %s through another hub",
                plugin_id,
                "enabled" if row.enabled else "disabled",
            )
            changed = True
        return changed
