"""Plugin configs at rest: secret fields sealed in the database, open in memory.

The one place that holds the credentials keyring for the plugin side of the
hub. Secrets typed into a config are sealed (``{"$sealed": ...}``, AES-GCM,
bound to the plugin and field) before they are stored and opened right before
the plugin gets them; see :mod:`unity.credentials.sealing`.
"""

from __future__ import annotations

from typing import Any

from unity.credentials import CredentialStore, Keyring, load_keyring, sealing
from unity.settings import Settings
from unity.storage import registry
from unity.storage.db import Database
from unity.storage.models import Plugin
from unity_sdk import ConfigError, PluginMetadata, secret_fields

__all__ = ["ConfigVault"]


class ConfigVault:
    """Seals and opens the secrets of plugin configs; owns the keyring."""

    def __init__(self, settings: Settings, keyring: Keyring | None = None) -> None:
        self.settings = settings
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring:
        """The credentials keyring (loaded from the settings on first use)."""
        if self._keyring is None:
            self._keyring = load_keyring(self.settings)
        return self._keyring

    def credentials(self, db: Database) -> CredentialStore:
        return CredentialStore(db, self.keyring)

    def opened(self, plugin_id: str, config: dict[str, Any] | None) -> dict[str, Any]:
        """A config as read from the database with its sealed secrets opened;
        ``ConfigError`` naming the field when one does not open."""
        if not any(sealing.is_sealed(value) for value in (config or {}).values()):
            # Nothing sealed: the keyring (and its key file) is not needed.
            return dict(config or {})
        try:
            return sealing.open_config(self.keyring, plugin_id, config or {})
        except sealing.SealedValueError as exc:
            raise ConfigError(
                f"the stored config of plugin {plugin_id!r} is invalid",
                [{"loc": [exc.field], "msg": f"{exc}; set the value again"}],
            ) from None

    def readable(self, plugin_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with sealed values opened, leaving out those that do not open."""
        if not any(sealing.is_sealed(value) for value in config.values()):
            return dict(config)
        return sealing.open_config(self.keyring, plugin_id, config, strict=False)

    def sealed(
        self, metadata: PluginMetadata, stored: dict[str, Any], *, plugin_id: str | None = None
    ) -> dict[str, Any]:
        """``stored`` as the database keeps it: plain values of secret fields sealed.

        Sealed for ``plugin_id`` (default: the metadata's id), the id :meth:`opened`
        is given: a plugin instance on an agent host ("postgres@nas") is not its
        catalogue plugin ("postgres")."""
        secrets = secret_fields(metadata)
        if not sealing.needs_sealing(stored, secrets):
            return dict(stored)
        return sealing.seal_config(self.keyring, plugin_id or metadata.id, stored, secrets)

    def seal_row(self, row: Plugin, metadata: PluginMetadata) -> None:
        """Seal plain secrets left in a registry row (stored before the hub sealed them)."""
        if row.config and sealing.needs_sealing(row.config, secret_fields(metadata)):
            row.config = self.sealed(metadata, row.config, plugin_id=row.id)

    async def seal_external_configs(self, db: Database) -> None:
        """Seal plain secrets in external plugins' stored configs (idempotent)."""
        async with db.session() as session:
            for row in await registry.list_plugins(session, limit=1_000_000):
                if not row.external or not row.config:
                    continue
                try:
                    metadata = PluginMetadata.model_validate(row.plugin_metadata)
                except ValueError:
                    continue
                self.seal_row(row, metadata)
