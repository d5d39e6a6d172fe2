"""What a plugin's config points at outside the plugin: credentials and targets.

Secret fields may hold ``{"$credential": name}``; the hub resolves them from the
credentials store right before it calls into the plugin, auditing each use.
Remote-capable plugins may list inventory servers in ``targets``; each gets its
own plugin instance with an SSH runner, kept until the plugin is disabled.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from unity.credentials import CredentialError, CredentialStore, Inventory
from unity.plugins.runtime import HOOK_TIMEOUT, ManagedPlugin, as_document
from unity.plugins.targets import TargetsFailedError, collect_each
from unity.plugins.vault import ConfigVault
from unity.settings import Settings
from unity.storage.db import Database
from unity_sdk import (
    LOCAL_TARGET,
    ConfigError,
    PluginAuthError,
    PluginBase,
    PluginMetadata,
    ValidatedConfig,
    credential_reference,
    secret_fields,
    validate_config,
)

__all__ = ["ConfigLinks"]

log = logging.getLogger(__name__)


class ConfigLinks:
    """Resolves credential references and runs plugins on their remote targets."""

    def __init__(self, db: Database, settings: Settings, vault: ConfigVault) -> None:
        self.db = db
        self.settings = settings
        self.vault = vault

    def _store(self) -> CredentialStore:
        return self.vault.credentials(self.db)

    async def collect_targets(
        self, managed: ManagedPlugin, timeout: float
    ) -> list[tuple[str, dict[str, Any]]]:
        instances: list[tuple[str, PluginBase[Any]]] = []
        failures: dict[str, BaseException] = {}
        for target in managed.config.targets:
            if target == LOCAL_TARGET:
                instances.append((self.settings.hostname, managed.instance))
                continue
            try:
                instances.append((target, await self.remote(managed, target)))
            except Exception as exc:
                failures[target] = exc
        results = await managed.worker.call(
            lambda: collect_each(instances, timeout), timeout=timeout + 5
        )
        documents: list[tuple[str, dict[str, Any]]] = []
        for host, result in results:
            try:
                if isinstance(result, BaseException):
                    raise result
                documents.append((host, as_document(result, self.settings.max_document_bytes)))
            except Exception as exc:
                failures[host] = exc
        if failures:
            only = next(iter(failures.values()))
            if len(failures) == 1 and not documents and isinstance(only, Exception):
                raise only
            raise TargetsFailedError(failures, documents)
        return documents

    async def remote(self, managed: ManagedPlugin, server: str) -> PluginBase:
        """The plugin's instance for an inventory server, created (and enabled) once."""
        if server in managed.remotes:
            return managed.remotes[server][0]
        # asyncssh loads with the first remote target, not with the hub.
        from unity.credentials.ssh import runner_for

        try:
            runner = await runner_for(
                self.db,
                self.vault.keyring,
                server,
                actor="hub",
                connect_timeout=self.settings.ssh_connect_timeout,
            )
        except CredentialError as exc:
            raise PluginAuthError(str(exc)) from None
        # Its own copy: a plugin may change its config object without touching the others'.
        config = copy.deepcopy(managed.instance.config)
        instance = managed.loaded.cls(config=config, runner=runner)
        await managed.worker.call(instance.on_enable, timeout=HOOK_TIMEOUT)
        managed.remotes[server] = (instance, runner)
        return instance

    async def close_remotes(self, managed: ManagedPlugin) -> None:
        remotes, managed.remotes = managed.remotes, {}
        for server, (instance, runner) in remotes.items():
            try:
                await managed.worker.call(instance.on_disable, timeout=HOOK_TIMEOUT)
            except Exception as exc:
                log.warning("plugin %s on %s: on_disable raised %s", managed.id, server, exc)
            await runner.close()

    async def check(self, metadata: PluginMetadata, validated: ValidatedConfig) -> None:
        """``ConfigError`` when a referenced credential or a target server does not exist."""
        if not validated.references and not validated.targets:
            return
        errors: list[dict[str, Any]] = []
        missing = await self._store().missing(validated.references.values())
        errors += [
            {"loc": [key], "msg": f"no credential named {name!r}"}
            for key, name in validated.references.items()
            if name in missing
        ]
        unknown = await Inventory(self._store()).missing(validated.targets)
        errors += [
            {"loc": ["targets"], "msg": f"no server named {name!r} in the inventory"}
            for name in validated.targets
            if name in unknown
        ]
        if errors:
            raise ConfigError(f"invalid config for plugin {metadata.id!r}", errors)

    async def resolve(
        self,
        metadata: PluginMetadata,
        stored: dict[str, Any],
        *,
        actor: str,
        source: str | None = None,
        plugin_id: str | None = None,
    ) -> dict[str, Any]:
        """``stored`` with each credential reference in a secret field replaced by the
        secret; every resolution is audited as a ``use`` by ``actor`` for
        ``plugin:<plugin_id>`` (default: the metadata's id; an instance names its own)."""
        resolved = dict(stored)
        secrets = secret_fields(metadata)
        for key, value in stored.items():
            name = credential_reference(value)
            if name is not None and key in secrets:
                credential = await self._store().resolve(
                    name,
                    actor=actor,
                    target=f"plugin:{plugin_id or metadata.id}",
                    source=source,
                    detail=f"config field {key}",
                )
                resolved[key] = credential.value
        return resolved

    async def credentials_for(
        self, managed: ManagedPlugin, stored: dict[str, Any]
    ) -> dict[str, Any]:
        if not managed.config.references:
            return stored
        try:
            return await self.resolve(managed.metadata, stored, actor="hub")
        except CredentialError as exc:
            raise PluginAuthError(f"config of {managed.id!r}: {exc}") from None

    async def apply_credentials(self, managed: ManagedPlugin) -> None:
        """Give the plugin its config with referenced credentials resolved (if any)."""
        if not managed.config.references:
            return
        resolved = await self.credentials_for(managed, managed.config.stored)
        try:
            config = validate_config(managed.metadata, resolved).plugin
        except ConfigError as exc:
            # The messages may quote the value: name the fields only.
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors)
            raise PluginAuthError(
                f"a credential does not fit the config of {managed.id!r} ({fields})"
            ) from None
        managed.instance.config = config
        for instance, _ in managed.remotes.values():
            instance.config = copy.deepcopy(config)
