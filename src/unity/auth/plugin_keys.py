"""External plugins' API keys (``unityk_...``): one kind of :mod:`unity.auth.keys`.

A key works only for its plugin id. Every metric batch carries one, so a
verified key is remembered for ``KEY_CACHE_SECONDS`` (see
:mod:`unity.auth.keys` for the rules the kinds share). Enrollment tokens and
the plugin-facing functions that issue and revoke keys are in
:mod:`unity.auth.external`.
"""

from __future__ import annotations

from dataclasses import dataclass

from unity.auth.keys import KeyKind
from unity.storage.db import Database
from unity.storage.models import PluginApiKey
from unity_sdk import API_KEY_PREFIX

__all__ = ["PLUGIN_KEYS", "VerifiedKey", "authenticate_plugin_key"]


@dataclass(frozen=True)
class VerifiedKey:
    """A live plugin key: its id and the only plugin id it may report for."""

    id: str
    plugin_id: str

    @property
    def owner(self) -> str:
        return self.plugin_id


PLUGIN_KEYS: KeyKind[PluginApiKey, VerifiedKey] = KeyKind(
    prefix=API_KEY_PREFIX, model=PluginApiKey, owner="plugin_id", verified=VerifiedKey
)


async def authenticate_plugin_key(db: Database, value: str) -> VerifiedKey | None:
    """The live key ``value`` names: remembered, else looked up (and remembered)."""
    return await PLUGIN_KEYS.authenticate(db, value)
