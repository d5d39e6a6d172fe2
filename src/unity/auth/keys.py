"""The keys machine clients hold, and the one verifier they all go through.

Two kinds exist: an external plugin's key (``unityk_...``, table
``plugin_api_keys``, owned by a plugin id) and an agent's key (``unitya_...``,
table ``agent_keys``, owned by a host id). A :class:`KeyKind` is one of them:
its prefix, its table and its owner column. Everything else is shared:

- only the SHA-256 of a key's secret is stored (:mod:`unity.auth.bearer`) and
  compared in constant time;
- a key is issued once for an enrollment token; a holder that proposed its
  secret can retry and get the same key back (:meth:`KeyKind.find_proposed`);
- every metric batch carries a key. Looking it up costs a session, a
  ``SELECT`` and a commit, more than a third of what storing the batch costs,
  so a verified key is remembered for ``KEY_CACHE_SECONDS``: until then the
  same key is checked against its remembered hash without touching the
  database. ``last_used_at`` is written when the key is looked up again and
  the stored value is over a minute old, so at most once a minute per key;
- a revocation in this process (one key, or every key of an owner) forgets
  the keys at once, and again when its transaction commits (a request
  verifying the key meanwhile could have remembered it). Another hub on the
  same database learns of it when its memory of the key expires: within
  ``KEY_CACHE_SECONDS``.

:mod:`unity.auth.plugin_keys` and :mod:`unity.auth.agents` name the two kinds
and keep their own vocabulary (plugin id, host id) on top.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Session

from unity.auth import bearer
from unity.storage.db import Database
from unity.storage.models import AgentKey, PluginApiKey
from unity.storage.types import utcnow

__all__ = [
    "KEY_CACHE_SECONDS",
    "LAST_USED_EVERY",
    "IssuedSecret",
    "KeyCache",
    "KeyKind",
    "forget_on_commit",
]

KEY_CACHE_SECONDS = 30.0
LAST_USED_EVERY = timedelta(minutes=1)
# Past this many remembered keys, expired ones are dropped (then all, if need be).
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class IssuedSecret:
    """A key just issued (or found again for a retry): its id and its only full value."""

    id: str
    value: str


class _Owned(Protocol):
    """A verified key: its id, and whose it is (a plugin id, a host id)."""

    @property
    def id(self) -> str: ...

    @property
    def owner(self) -> str: ...


V = TypeVar("V", bound=_Owned)
# The key tables: the same columns but for the owner's.
R = TypeVar("R", PluginApiKey, AgentKey)


@dataclass(frozen=True)
class _Remembered(Generic[V]):
    key: V
    secret_hash: str
    verified_at: float  # time.monotonic()


class KeyCache(Generic[V]):
    """Keys verified in the last ``KEY_CACHE_SECONDS``, by key id, with their hashes."""

    def __init__(self) -> None:
        self._keys: dict[str, _Remembered[V]] = {}

    def get(self, key_id: str, secret: str) -> V | None:
        entry = self._keys.get(key_id)
        if entry is None or time.monotonic() - entry.verified_at >= KEY_CACHE_SECONDS:
            return None
        return entry.key if bearer.matches(secret, entry.secret_hash) else None

    def put(self, key: V, secret_hash: str) -> None:
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


def forget_on_commit(session: AsyncSession, forget: Callable[[], None]) -> None:
    """Call ``forget`` now and once ``session`` commits (a revocation): a request
    verifying the key meanwhile could have remembered it again."""

    def after_commit(_session: Session | None = None) -> None:
        forget()

    forget()
    sa_event.listen(session.sync_session, "after_commit", after_commit, once=True)


class KeyKind(Generic[R, V]):
    """One kind of key: ``prefix``, its table ``model`` and the column ``owner``
    names the owner by; ``verified(id, owner)`` is what a verified key reads as."""

    def __init__(
        self, *, prefix: str, model: type[R], owner: str, verified: Callable[[str, str], V]
    ) -> None:
        self.prefix = prefix
        self.model: type[R] = model
        self.owner_column: InstrumentedAttribute[str] = getattr(model, owner)
        self.owner = owner
        self.verified = verified
        self.cache: KeyCache[V] = KeyCache()

    async def issue(
        self,
        session: AsyncSession,
        *,
        owner: str,
        enrollment_id: str | None,
        secret: str | None = None,
        **columns: Any,
    ) -> IssuedSecret:
        """A new key for ``owner``; ``secret`` is one the holder proposed (only its
        hash is stored), else a fresh one. ``columns``: the table's other values."""
        key_id, value, secret_hash = bearer.issue(self.prefix, secret)
        row = self.model(
            id=key_id,
            secret_hash=secret_hash,
            enrollment_token_id=enrollment_id,
            created_at=utcnow(),
            **{self.owner: owner},
            **columns,
        )
        session.add(row)
        await session.flush()
        return IssuedSecret(key_id, value)

    async def find_proposed(
        self, session: AsyncSession, *, owner: str, enrollment_id: str, secret: str
    ) -> IssuedSecret | None:
        """The live key an earlier attempt issued for this token, owner and proposed
        secret: what a retry of that attempt gets back."""
        model = self.model
        key_id = await session.scalar(
            select(model.id).where(
                self.owner_column == owner,
                model.enrollment_token_id == enrollment_id,
                model.secret_hash == bearer.hash_secret(secret),
                model.revoked_at.is_(None),
            )
        )
        if key_id is None:
            return None
        return IssuedSecret(key_id, bearer.compose(self.prefix, key_id, secret))

    async def verify(self, session: AsyncSession, value: str) -> R | None:
        """The live key row ``value`` names, from the database; refreshes
        ``last_used_at`` when it is over a minute old."""
        parsed = bearer.parse(self.prefix, value)
        if parsed is None:
            return None
        key_id, secret = parsed
        row = await session.get(self.model, key_id)
        if row is None or row.revoked_at is not None or not bearer.matches(secret, row.secret_hash):
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
            row.last_used_at = now
        return row

    async def authenticate(self, db: Database, value: str) -> V | None:
        """The live key ``value`` names: remembered, else looked up (and remembered)."""
        parsed = bearer.parse(self.prefix, value)
        if parsed is None:
            return None
        remembered = self.cache.get(*parsed)
        if remembered is not None:
            return remembered
        async with db.session() as session:
            row = await self.verify(session, value)
            if row is None:
                return None
            key = self.verified(row.id, getattr(row, self.owner))
            secret_hash = row.secret_hash
        self.cache.put(key, secret_hash)
        return key

    async def revoke(self, session: AsyncSession, key_id: str, *, owner: str | None = None) -> bool:
        """Revoke one key (of ``owner``, when given); False when there is no such live key."""
        row = await session.get(self.model, key_id)
        if row is None or row.revoked_at is not None:
            return False
        if owner is not None and getattr(row, self.owner) != owner:
            return False
        row.revoked_at = utcnow()
        forget_on_commit(session, lambda: self.cache.forget(key_id=key_id))
        return True

    async def revoke_all(self, session: AsyncSession, owner: str) -> int:
        """Revoke every live key of ``owner``; how many were live."""
        forget_on_commit(session, lambda: self.cache.forget(owner=owner))
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(self.model)
                .where(self.owner_column == owner, self.model.revoked_at.is_(None))
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            ),
        )
        return result.rowcount
