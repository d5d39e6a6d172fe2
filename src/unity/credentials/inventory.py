"""The server inventory: where servers are, how to log in, and their pinned host keys.

A server names a credential: a ``server_login`` (host, port, user and a
password or key; the server's own fields default to it), an ``ssh_key`` or
a ``password``. Its host key is pinned on first contact; a different key
later is recorded as *pending* and refused until an admin accepts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from unity.credentials import audit
from unity.credentials.audit import AuditAction
from unity.credentials.errors import (
    CredentialExistsError,
    CredentialInUseError,
    CredentialNotFoundError,
    InvalidCredentialError,
)
from unity.credentials.material import load_ssh_key
from unity.credentials.schemas import ServerInput, ServerUpdate
from unity.credentials.store import CredentialStore
from unity.storage.models import Credential, Plugin, Server
from unity.storage.types import utcnow

if TYPE_CHECKING:
    import asyncssh

__all__ = ["LOCAL_TARGET", "Inventory", "LoginTarget", "configured_targets"]

LOGIN_KINDS = ("server_login", "ssh_key", "password")
LOCAL_TARGET = "local"


def configured_targets(config: Any) -> list[str]:
    targets = config.get("targets") if isinstance(config, dict) else None
    return [t for t in targets if isinstance(t, str)] if isinstance(targets, list) else []


@dataclass(frozen=True)
class LoginTarget:
    """Everything needed to log in to one server (holds the decrypted secret)."""

    server: str
    host: str
    port: int
    username: str
    credential: str
    pinned_fingerprint: str | None
    authorized_keys_file: str
    password: str | None = field(default=None, repr=False)
    private_key: asyncssh.SSHKey | None = field(default=None, repr=False)


def _not_found(name: str) -> CredentialNotFoundError:
    return CredentialNotFoundError(f"no server named {name!r}")


class Inventory:
    """Servers on the store's database."""

    def __init__(self, store: CredentialStore) -> None:
        self.store = store
        self.db = store.db

    async def _login_credential(self, name: str) -> Credential:
        credential = await self.store.get(name)
        if credential.kind not in LOGIN_KINDS:
            raise InvalidCredentialError(
                f"credential {name!r} is a {credential.kind}; a server needs one of "
                f"{', '.join(LOGIN_KINDS)}"
            )
        return credential

    async def add(self, request: ServerInput, *, actor: str, source: str | None = None) -> Server:
        if request.name == LOCAL_TARGET:
            raise InvalidCredentialError(f"{LOCAL_TARGET!r} is reserved for the hub itself")
        credential = await self._login_credential(request.credential)
        defaults = credential.public if credential.kind == "server_login" else {}
        host = request.host or defaults.get("host")
        username = request.username or defaults.get("username") or credential.public.get("username")
        if not host or not username:
            raise InvalidCredentialError(
                "host and username are needed (a server_login credential provides them)"
            )
        now = utcnow()
        row = Server(
            name=request.name,
            host=host,
            port=request.port or int(defaults.get("port", 22)),
            username=username,
            credential=credential.name,
            authorized_keys_file=request.authorized_keys_file,
            created_at=now,
            updated_at=now,
        )
        async with self.db.session() as session:
            if await session.scalar(select(Server.id).where(Server.name == request.name)):
                raise CredentialExistsError(f"a server named {request.name!r} exists")
            session.add(row)
            await session.flush()
            audit.record(
                session,
                actor=actor,
                action=AuditAction.SERVER_ADD,
                credential=credential.name,
                target=row.name,
                source=source,
                detail=f"{row.username}@{row.host}:{row.port}",
            )
        return row

    async def list_servers(self, *, after: str | None = None, limit: int = 100) -> list[Server]:
        stmt = select(Server).order_by(Server.name).limit(limit)
        if after is not None:
            stmt = stmt.where(Server.name > after)
        async with self.db.session() as session:
            return list((await session.scalars(stmt)).all())

    async def get(self, name: str) -> Server:
        async with self.db.session() as session:
            row = await session.scalar(select(Server).where(Server.name == name))
        if row is None:
            raise _not_found(name)
        return row

    async def missing(self, names: Iterable[str]) -> set[str]:
        wanted = set(names) - {LOCAL_TARGET}
        if not wanted:
            return set()
        async with self.db.session() as session:
            found = await session.scalars(select(Server.name).where(Server.name.in_(wanted)))
            return wanted - set(found)

    async def update(
        self, name: str, change: ServerUpdate, *, actor: str, source: str | None = None
    ) -> Server:
        if change.credential is not None:
            await self._login_credential(change.credential)
        async with self.db.session() as session:
            row = await session.scalar(select(Server).where(Server.name == name))
            if row is None:
                raise _not_found(name)
            moved = (change.host not in (None, row.host)) or (change.port not in (None, row.port))
            for key, value in change.model_dump(exclude_none=True).items():
                setattr(row, key, value)
            if moved:
                # Another address may be another machine: its key is learned anew.
                row.host_key = row.host_key_fingerprint = row.host_key_pinned_at = None
                row.pending_host_key = row.pending_host_key_fingerprint = None
                row.pending_seen_at = None
            audit.record(
                session,
                actor=actor,
                action=AuditAction.SERVER_UPDATE,
                credential=row.credential,
                target=name,
                source=source,
                detail=", ".join(sorted(change.model_dump(exclude_none=True))),
            )
        return row

    async def users(self, name: str) -> list[str]:
        """Plugins whose ``targets`` name the server."""
        async with self.db.session() as session:
            plugins = await session.execute(select(Plugin.id, Plugin.config))
            return [pid for pid, config in plugins if name in configured_targets(config)]

    async def delete(self, name: str, *, actor: str, source: str | None = None) -> None:
        users = await self.users(name)
        if users:
            raise CredentialInUseError(
                f"server {name!r} is a target of plugin(s) {', '.join(users)}; change those first"
            )
        async with self.db.session() as session:
            row = await session.scalar(select(Server).where(Server.name == name))
            if row is None:
                raise _not_found(name)
            await session.delete(row)
            audit.record(
                session,
                actor=actor,
                action=AuditAction.SERVER_DELETE,
                credential=row.credential,
                target=name,
                source=source,
            )

    # -- logging in and host keys ----------------------------------------------------

    async def login(
        self, name: str, *, actor: str, source: str | None = None, audit_success: bool = True
    ) -> LoginTarget:
        """The server's address and decrypted login (audited as a ``use`` of the credential;
        with ``audit_success=False`` the caller records how the login went)."""
        server = await self.get(name)
        credential = await self.store.resolve(
            server.credential,
            actor=actor,
            target=name,
            source=source,
            detail="ssh login",
            audit_success=audit_success,
        )
        password = credential.secret.get("password")
        key_text = credential.secret.get("private_key")
        return LoginTarget(
            server=server.name,
            host=server.host,
            port=server.port,
            username=server.username,
            credential=server.credential,
            pinned_fingerprint=server.host_key_fingerprint,
            authorized_keys_file=server.authorized_keys_file,
            password=password,
            private_key=load_ssh_key(key_text) if key_text else None,
        )

    async def pin(self, name: str, *, key: str, fingerprint: str, actor: str) -> bool:
        """Pin ``key`` on first contact; False when a key was pinned meanwhile."""
        async with self.db.session() as session:
            row = await session.scalar(select(Server).where(Server.name == name).with_for_update())
            if row is None or row.host_key_fingerprint is not None:
                return False
            row.host_key, row.host_key_fingerprint = key, fingerprint
            row.host_key_pinned_at = utcnow()
            audit.record(
                session,
                actor=actor,
                action=AuditAction.HOST_KEY_PIN,
                credential=row.credential,
                target=name,
                detail=f"first contact: pinned {fingerprint}",
            )
        return True

    async def record_mismatch(
        self, name: str, *, key: str, fingerprint: str, pinned: str, actor: str
    ) -> None:
        async with self.db.session() as session:
            row = await session.scalar(select(Server).where(Server.name == name))
            if row is None:
                return
            row.pending_host_key, row.pending_host_key_fingerprint = key, fingerprint
            row.pending_seen_at = utcnow()
            audit.record(
                session,
                actor=actor,
                action=AuditAction.HOST_KEY_MISMATCH,
                credential=row.credential,
                target=name,
                success=False,
                detail=f"refused host key {fingerprint}; pinned is {pinned}",
            )

    async def accept_host_key(
        self,
        name: str,
        *,
        actor: str,
        fingerprint: str | None = None,
        source: str | None = None,
    ) -> Server:
        """Make the pending host key the pinned one. With ``fingerprint``, only if it
        is the pending one (what the admin saw is what gets trusted)."""
        async with self.db.session() as session:
            row = await session.scalar(select(Server).where(Server.name == name).with_for_update())
            if row is None:
                raise _not_found(name)
            pending = row.pending_host_key_fingerprint
            if pending is None or row.pending_host_key is None:
                raise InvalidCredentialError(f"server {name!r} has no pending host key to accept")
            if fingerprint is not None and fingerprint != pending:
                raise InvalidCredentialError(
                    f"the pending host key of {name!r} is {pending}, not {fingerprint}"
                )
            previous = row.host_key_fingerprint
            row.host_key, row.host_key_fingerprint = row.pending_host_key, pending
            row.host_key_pinned_at = utcnow()
            row.pending_host_key = row.pending_host_key_fingerprint = None
            row.pending_seen_at = None
            audit.record(
                session,
                actor=actor,
                action=AuditAction.HOST_KEY_ACCEPT,
                credential=row.credential,
                target=name,
                source=source,
                detail=f"pinned {pending} (was {previous})",
            )
        return row
