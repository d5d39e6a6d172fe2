"""Authenticating external plugins' API keys, with verified keys kept in memory.

Every metric batch carries its plugin's key. Looking the key up costs a
session, a ``SELECT`` and a commit, more than a third of what storing the
batch costs, so a verified key is remembered for ``KEY_CACHE_SECONDS``: until
then the same key is checked against its remembered hash without touching
the database. ``last_used_at`` is written when the key is looked up again and
the stored value is over a minute old, so at most once a minute per key.

A revocation in this process (one key, or every key of a plugin taken over)
forgets the keys at once, and again when its transaction commits (a request
verifying the key meanwhile could have remembered it). Another hub on the
same database learns of the revocation when its memory of the key expires:
within ``KEY_CACHE_SECONDS``.

:class:`KeyCache` and :func:`forget_on_commit` serve the agents' keys
(:mod:`unity.auth.agents`) by the same rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, Protocol, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from unity.auth import bearer
from unity.storage.db import Database
from unity.storage.models import PluginApiKey
from unity.storage.types import utcnow
from unity_sdk import API_KEY_PREFIX

__all__ = [
    "KEY_CACHE_SECONDS",
    "KeyCache",
    "VerifiedKey",
    "authenticate_plugin_key",
    "forget_after_commit",
    "forget_on_commit",
    "verify_plugin_key",
]

KEY_CACHE_SECONDS = 30.0
LAST_USED_EVERY = timedelta(minutes=1)
# Past this many remembered keys, expired ones are dropped (then all, if need be).
_MAX_REMEMBERED = 10_000


class _Owned(Protocol):
    """A verified key: its id, and whose it is (a plugin id, a host id)."""

    @property
    def id(self) -> str: ...

    @property
    def owner(self) -> str: ...


K = TypeVar("K", bound=_Owned)


@dataclass(frozen=True)
class VerifiedKey:
    """A live plugin key: its id and the only plugin id it may report for."""

    id: str
    plugin_id: str

    @property
    def owner(self) -> str:
        return self.plugin_id


@dataclass(frozen=True)
class _Remembered(Generic[K]):
    key: K
    secret_hash: str
    verified_at: float  # time.monotonic()


class KeyCache(Generic[K]):
    """Keys verified in the last ``KEY_CACHE_SECONDS``, by key id, with their hashes."""

    def __init__(self) -> None:
        self._keys: dict[str, _Remembered[K]] = {}

    def get(self, key_id: str, secret: str) -> K | None:
        entry = self._keys.get(key_id)
        if entry is None or time.monotonic() - entry.verified_at >= KEY_CACHE_SECONDS:
            return None
        return entry.key if bearer.matches(secret, entry.secret_hash) else None

    def put(self, key: K, secret_hash: str) -> None:
        now = time.monotonic()
        if len(self._keys) >= _MAX_REMEMBERED:
            self._keys = {
                k: e for k, e in self._keys.items() if now - e.verified_at < KEY_CACHE_SECONDS
            }
            if len(self._keys) >= _MAX_REMEMBERED:
                self._keys.clear()
        self._keys[key.id] = _Remembered(key, secret_hash, now)

    def forget(self, *, key_id: str | None = None, owner: str | None = None) -> None:
        self._keys = {
            k: e
            for k, e in self._keys.items()
            if k != key_id and (owner is None or e.key.owner != owner)
        }


_cache: KeyCache[VerifiedKey] = KeyCache()


async def verify_plugin_key(session: AsyncSession, value: str) -> PluginApiKey | None:
    """The live key row ``value`` names, from the database; refreshes ``last_used_at``
    when it is over a minute old."""
    parsed = bearer.parse(API_KEY_PREFIX, value)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = await session.get(PluginApiKey, key_id)
    if row is None or row.revoked_at is not None or not bearer.matches(secret, row.secret_hash):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = now
    return row


async def authenticate_plugin_key(db: Database, value: str) -> VerifiedKey | None:
    """The live key ``value`` names: remembered, else looked up (and remembered)."""
    parsed = bearer.parse(API_KEY_PREFIX, value)
    if parsed is None:
        return None
    remembered = _cache.get(*parsed)
    if remembered is not None:
        return remembered
    async with db.session() as session:
        row = await verify_plugin_key(session, value)
        if row is None:
            return None
        key, secret_hash = VerifiedKey(row.id, row.plugin_id), row.secret_hash
    _cache.put(key, secret_hash)
    return key


def forget_on_commit(session: AsyncSession, forget: Callable[[], None]) -> None:
    """Call ``forget`` now and once ``session`` commits (a revocation): a request
    verifying the key meanwhile could have remembered it again."""

    def after_commit(_session: Session | None = None) -> None:
        forget()

    forget()
    event.listen(session.sync_session, "after_commit", after_commit, once=True)


def forget_after_commit(
    session: AsyncSession, *, key_id: str | None = None, plugin_id: str | None = None
) -> None:
    """Forget the key ``key_id`` (or every key of ``plugin_id``) now and once
    ``session`` commits the revocation."""
    forget_on_commit(session, lambda: _cache.forget(key_id=key_id, owner=plugin_id))
