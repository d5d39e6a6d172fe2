"""The credentials store: create, list, resolve, reveal, delete and re-key secrets.

Listing and reading return rows whose ``public`` part is safe to show; the
secret payload only leaves :meth:`CredentialStore.resolve` (for the hub and
plugins) and :meth:`CredentialStore.reveal` (admins), both audited.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from unity.credentials import audit, sealing
from unity.credentials.audit import AuditAction
from unity.credentials.crypto import Keyring, Sealed
from unity.credentials.errors import (
    CredentialError,
    CredentialExistsError,
    CredentialInUseError,
    CredentialNotFoundError,
    DecryptionError,
    MasterKeyError,
)
from unity.credentials.material import build, primary_secret
from unity.credentials.schemas import CredentialInput
from unity.storage.db import Database
from unity.storage.models import (
    Credential,
    CredentialAudit,
    NotificationChannel,
    Plugin,
    Server,
)
from unity.storage.types import utcnow

__all__ = [
    "CREDENTIAL_REF",
    "CredentialStore",
    "ResolvedCredential",
    "RotationReport",
    "referenced_names",
]

CREDENTIAL_REF = "$credential"


def referenced_names(config: Any) -> set[str]:
    """Credential names a stored plugin config refers to (top-level fields)."""
    if not isinstance(config, dict):
        return set()
    return {
        value[CREDENTIAL_REF]
        for value in config.values()
        if isinstance(value, dict) and isinstance(value.get(CREDENTIAL_REF), str)
    }


@dataclass(frozen=True)
class ResolvedCredential:
    """A credential with its secret payload, decrypted (never printed)."""

    name: str
    kind: str
    public: dict[str, Any]
    secret: dict[str, str] = field(repr=False)

    @property
    def value(self) -> str:
        """The value a plugin config reference stands for (password, token, private key)."""
        return primary_secret(self.kind, self.secret)


@dataclass(frozen=True)
class RotationReport:
    total: int
    rotated: int
    skipped: int
    key_id: str
    configs: int = 0
    """Plugin configs whose sealed secrets were re-sealed."""


def _aad(row: Credential) -> bytes:
    return "\0".join(("unity-credential/v1", row.id, row.kind, row.name)).encode()


def _sealed(row: Credential) -> Sealed:
    return Sealed(row.ciphertext, row.nonce, row.key_id)


class CredentialStore:
    """Credentials on one database, sealed with one keyring."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring

    def _open(self, row: Credential) -> dict[str, str]:
        plaintext = self.keyring.open(_sealed(row), aad=_aad(row), what=f"credential {row.name!r}")
        payload: dict[str, str] = json.loads(plaintext)
        return payload

    def _seal(self, row: Credential, secret: dict[str, str]) -> None:
        sealed = self.keyring.seal(json.dumps(secret).encode(), aad=_aad(row))
        row.ciphertext, row.nonce, row.key_id = sealed.ciphertext, sealed.nonce, sealed.key_id

    # -- create, read, delete --------------------------------------------------------

    async def create(
        self, request: CredentialInput, *, actor: str, source: str | None = None
    ) -> Credential:
        """Validate the material, seal the secret and store it (audited ``create``)."""
        material = build(request)
        now = utcnow()
        row = Credential(
            id=secrets.token_hex(16),
            name=request.name,
            kind=request.kind,
            public=material.public,
            expires_at=material.expires_at,
            created_at=now,
            updated_at=now,
        )
        self._seal(row, material.secret)
        try:
            async with self.db.session() as session:
                if await session.scalar(select(Credential.id).where(Credential.name == row.name)):
                    raise CredentialExistsError(f"a credential named {row.name!r} exists")
                session.add(row)
                await session.flush()
                audit.record(
                    session,
                    actor=actor,
                    action=AuditAction.CREATE,
                    credential=row.name,
                    source=source,
                    detail=row.kind,
                )
        except IntegrityError:
            raise CredentialExistsError(f"a credential named {row.name!r} exists") from None
        return row

    async def list_credentials(
        self, *, kind: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[Credential]:
        stmt = select(Credential).order_by(Credential.name).limit(limit)
        if kind is not None:
            stmt = stmt.where(Credential.kind == kind)
        if after is not None:
            stmt = stmt.where(Credential.name > after)
        async with self.db.session() as session:
            return list((await session.scalars(stmt)).all())

    async def get(self, name: str) -> Credential:
        async with self.db.session() as session:
            row = await session.scalar(select(Credential).where(Credential.name == name))
        if row is None:
            raise CredentialNotFoundError(f"no credential named {name!r}")
        return row

    async def missing(self, names: Iterable[str]) -> set[str]:
        """The names among ``names`` that are not stored."""
        wanted = set(names)
        if not wanted:
            return set()
        async with self.db.session() as session:
            found = await session.scalars(
                select(Credential.name).where(Credential.name.in_(wanted))
            )
            return wanted - set(found)

    async def users(self, name: str) -> list[str]:
        """What still references the credential: ``server:<name>``, ``plugin:<id>`` and
        ``channel:<name>`` (a notification channel's URL)."""
        async with self.db.session() as session:
            servers = await session.scalars(select(Server.name).where(Server.credential == name))
            channels = list(
                await session.scalars(
                    select(NotificationChannel.name).where(NotificationChannel.credential == name)
                )
            )
            plugins = await session.execute(select(Plugin.id, Plugin.config))
            users = [f"server:{server}" for server in servers]
            users += [
                f"plugin:{plugin_id}"
                for plugin_id, config in plugins
                if name in referenced_names(config)
            ]
        return users + [f"channel:{channel}" for channel in channels]

    async def delete(self, name: str, *, actor: str, source: str | None = None) -> None:
        """Delete (audited); refused while a server or plugin config references it."""
        users = await self.users(name)
        if users:
            raise CredentialInUseError(
                f"credential {name!r} is still used by {', '.join(users)}; change those first"
            )
        async with self.db.session() as session:
            row = await session.scalar(select(Credential).where(Credential.name == name))
            if row is None:
                raise CredentialNotFoundError(f"no credential named {name!r}")
            await session.delete(row)
            audit.record(
                session, actor=actor, action=AuditAction.DELETE, credential=name, source=source
            )

    async def expiring(self, *, days: float, now: datetime | None = None) -> list[Credential]:
        """Credentials that expire within ``days`` (or have expired), soonest first."""
        horizon = (now or utcnow()) + timedelta(days=days)
        stmt = (
            select(Credential)
            .where(Credential.expires_at.is_not(None), Credential.expires_at <= horizon)
            .order_by(Credential.expires_at, Credential.name)
        )
        async with self.db.session() as session:
            return list((await session.scalars(stmt)).all())

    async def audit_log(
        self,
        *,
        credential: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[CredentialAudit]:
        async with self.db.session() as session:
            return await audit.list_entries(
                session,
                credential=credential,
                action=action,
                actor=actor,
                before=before,
                limit=limit,
            )

    # -- secrets out: resolve and reveal ---------------------------------------------

    async def _decrypt(
        self,
        name: str,
        *,
        action: AuditAction,
        actor: str,
        target: str | None,
        source: str | None,
        detail: str,
        audit_success: bool = True,
    ) -> ResolvedCredential:
        failure: CredentialError
        async with self.db.session() as session:
            row = await session.scalar(select(Credential).where(Credential.name == name))
            if row is None:
                failure = CredentialNotFoundError(f"no credential named {name!r}")
            else:
                try:
                    secret = self._open(row)
                except DecryptionError as exc:
                    failure = exc
                else:
                    if audit_success:
                        audit.record(
                            session,
                            actor=actor,
                            action=action,
                            credential=name,
                            target=target,
                            source=source,
                            detail=detail,
                        )
                    return ResolvedCredential(row.name, row.kind, dict(row.public), secret)
        await audit.record_detached(
            self.db,
            actor=actor,
            action=action,
            credential=name,
            target=target,
            source=source,
            success=False,
            detail=str(failure),
        )
        raise failure

    async def resolve(
        self,
        name: str,
        *,
        actor: str,
        target: str | None = None,
        source: str | None = None,
        detail: str = "",
        audit_success: bool = True,
    ) -> ResolvedCredential:
        """Decrypt for use by the hub or a plugin; audited as ``use`` (failures too).

        ``audit_success=False`` is for a caller that records the outcome of the use
        itself (an SSH login accepted or refused), so one attempt is one entry.
        """
        return await self._decrypt(
            name,
            action=AuditAction.USE,
            actor=actor,
            target=target,
            source=source,
            detail=detail,
            audit_success=audit_success,
        )

    async def reveal(
        self, name: str, *, actor: str, source: str | None = None
    ) -> ResolvedCredential:
        """Decrypt to show an admin; audited as ``reveal`` (failures too)."""
        return await self._decrypt(
            name, action=AuditAction.REVEAL, actor=actor, target=None, source=source, detail=""
        )

    # -- master key ------------------------------------------------------------------

    async def key_ids_in_use(self) -> dict[str, int]:
        """How many credentials and plugin configs with sealed secrets each master
        key id seals."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(Credential.key_id, func.count()).group_by(Credential.key_id)
            )
            counts = {key_id: int(count) for key_id, count in rows}
            for config in await session.scalars(select(Plugin.config)):
                for key_id in sealing.key_ids(config):
                    counts[key_id] = counts.get(key_id, 0) + 1
            return counts

    async def unreadable_key_ids(self) -> set[str]:
        """Key ids of stored credentials that the keyring cannot open."""
        return set(await self.key_ids_in_use()) - self.keyring.key_ids

    async def verify_keyring(self) -> None:
        """``MasterKeyError`` when stored credentials or plugin-config secrets are
        sealed with keys not loaded."""
        unreadable = await self.unreadable_key_ids()
        if unreadable:
            raise MasterKeyError(
                f"secrets in the database (credentials or plugin configs) are sealed with "
                f"master key(s) "
                f"{', '.join(sorted(unreadable))}, but the loaded key is "
                f"{self.keyring.current.key_id}: set UNITY_MASTER_KEY (or master.key) to the "
                "right key, or give the old one as UNITY_MASTER_KEY_PREVIOUS"
            )

    async def rotate_master_key(
        self,
        *,
        actor: str = "cli",
        progress: Callable[[int, int], None] | None = None,
    ) -> RotationReport:
        """Re-seal every credential not yet sealed by the current key.

        Each row is re-sealed in its own transaction, so an interrupted run
        leaves every row readable with the old or the new key, and running it
        again finishes the job (rows already on the new key are skipped).
        ``progress(done, total)`` is called after each row.
        """
        target = self.keyring.current.key_id
        async with self.db.session() as session:
            total = await session.scalar(select(func.count()).select_from(Credential)) or 0
            pending = list(
                await session.scalars(
                    select(Credential.id).where(Credential.key_id != target).order_by(Credential.id)
                )
            )
        skipped = total - len(pending)
        rotated = 0
        for credential_id in pending:
            async with self.db.session() as session:
                row = await session.get(Credential, credential_id, with_for_update=True)
                if row is not None and row.key_id != target:
                    secret = self._open(row)
                    previous = row.key_id
                    self._seal(row, secret)
                    row.rotated_at = utcnow()
                    audit.record(
                        session,
                        actor=actor,
                        action=AuditAction.ROTATE,
                        credential=row.name,
                        detail=f"master key {previous} -> {target}",
                    )
                    rotated += 1
            if progress is not None:
                progress(skipped + rotated, total)
        configs = await self._reseal_plugin_configs(target)
        return RotationReport(
            total=total, rotated=rotated, skipped=skipped, key_id=target, configs=configs
        )

    async def _reseal_plugin_configs(self, target: str) -> int:
        """Re-seal secrets typed into plugin configs (see :mod:`.sealing`), one
        plugin per transaction like the credentials."""
        async with self.db.session() as session:
            pending = [
                plugin_id
                for plugin_id, config in await session.execute(select(Plugin.id, Plugin.config))
                if sealing.key_ids(config) - {target}
            ]
        done = 0
        for plugin_id in pending:
            async with self.db.session() as session:
                row = await session.get(Plugin, plugin_id, with_for_update=True)
                if row is None or not sealing.key_ids(row.config) - {target}:
                    continue
                row.config, count = sealing.reseal_config(self.keyring, row.id, row.config)
                done += 1 if count else 0
        return done
