"""Running commands on inventory servers over SSH (asyncssh), with pinned host keys.

:class:`SSHRunner` implements the SDK's ``Runner`` protocol, so a plugin's
``self.runner.run([...])`` works the same on the hub and on a server. Host
keys are ours to manage, not ``~/.ssh/known_hosts``: the first contact pins
the server's key (and reports its fingerprint); a different key later is
refused with :class:`HostKeyMismatchError`, audited, and kept as *pending*
until an admin accepts it.

The connection and every database write live on the hub's event loop; a
plugin calling ``run`` from its worker thread's loop is served there too.
"""

from __future__ import annotations

import asyncio
import hmac
import shlex
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncssh

from unity.credentials.audit import AuditAction, record_detached
from unity.credentials.crypto import Keyring
from unity.credentials.errors import (
    HostKeyMismatchError,
    SSHAuthError,
    SSHConnectError,
)
from unity.credentials.inventory import Inventory, LoginTarget
from unity.credentials.store import CredentialStore
from unity.storage.db import Database
from unity_sdk import CommandResult

__all__ = ["HostKeyInfo", "SSHRunner", "runner_for"]

T = TypeVar("T")
KEEPALIVE_SECONDS = 30.0


@dataclass(frozen=True)
class HostKeyInfo:
    """The host key a server presented on the current connection."""

    server: str
    fingerprint: str
    algorithm: str
    first_contact: bool


class _PinningClient(asyncssh.SSHClient):
    """Accepts exactly the pinned host key, or any key on first contact."""

    def __init__(self, pinned: str | None) -> None:
        self.pinned = pinned
        self.offered: asyncssh.SSHKey | None = None
        self.closed = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        if self.pinned is None:
            return True
        return hmac.compare_digest(key.get_fingerprint("sha256"), self.pinned)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {reason}"


class SSHRunner:
    """Runs commands on one inventory server; ``host`` is the server's name."""

    def __init__(
        self,
        inventory: Inventory,
        server: str,
        *,
        actor: str,
        source: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.host = server
        self.inventory = inventory
        self.actor = actor
        self.source = source
        self.connect_timeout = connect_timeout
        self.host_key: HostKeyInfo | None = None
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._client: _PinningClient | None = None

    async def _on_hub_loop(self, call: Callable[[], Awaitable[T]]) -> T:
        async def run() -> T:
            return await call()

        if asyncio.get_running_loop() is self._loop:
            return await run()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self._loop))

    # -- connecting --------------------------------------------------------------------

    def _options(self, login: LoginTarget, client: _PinningClient) -> dict[str, Any]:
        options: dict[str, Any] = {
            "username": login.username,
            "known_hosts": lambda host, addr, port: ([], [], []),
            "agent_path": None,
            "config": None,
            "connect_timeout": self.connect_timeout,
            "login_timeout": self.connect_timeout,
            "keepalive_interval": KEEPALIVE_SECONDS,
            "client_factory": lambda: client,
        }
        if login.private_key is not None:
            options.update(client_keys=[login.private_key], preferred_auth="publickey")
        else:
            options.update(
                client_keys=None,
                password=login.password,
                preferred_auth="password,keyboard-interactive",
            )
        return options

    async def _audit_login(self, login: LoginTarget, *, success: bool, detail: str) -> None:
        await record_detached(
            self.inventory.db,
            actor=self.actor,
            action=AuditAction.USE,
            credential=login.credential,
            target=self.host,
            source=self.source,
            success=success,
            detail=detail,
        )

    async def _connect(self) -> asyncssh.SSHClientConnection:
        # One audit entry per attempt, saying how the login went (recorded below).
        login = await self.inventory.login(
            self.host, actor=self.actor, source=self.source, audit_success=False
        )
        try:
            conn = await self._login(login)
        except SSHAuthError as exc:
            await self._audit_login(login, success=False, detail=str(exc))
            raise
        except (SSHConnectError, HostKeyMismatchError) as exc:
            await self._audit_login(login, success=False, detail=f"ssh login not attempted: {exc}")
            raise
        auth = "key" if login.private_key is not None else "password"
        where = f"{login.username}@{login.host}:{login.port}"
        await self._audit_login(login, success=True, detail=f"ssh {auth} login to {where}")
        return conn

    async def _login(self, login: LoginTarget) -> asyncssh.SSHClientConnection:
        client = _PinningClient(login.pinned_fingerprint)
        where = f"{login.username}@{login.host}:{login.port}"
        proven = False
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(login.host, login.port, **self._options(login, client)),
                self.connect_timeout + 5,
            )
            proven = True
        except asyncssh.HostKeyNotVerifiable:
            offered = client.offered
            if offered is None or login.pinned_fingerprint is None:
                raise SSHConnectError(
                    f"server {self.host!r} ({where}): host key not usable"
                ) from None
            fingerprint = offered.get_fingerprint("sha256")
            await self.inventory.record_mismatch(
                self.host,
                key=offered.export_public_key("openssh").decode().strip(),
                fingerprint=fingerprint,
                pinned=login.pinned_fingerprint,
                actor=self.actor,
            )
            raise HostKeyMismatchError(
                f"server {self.host!r} ({where}) offered host key {fingerprint}, but "
                f"{login.pinned_fingerprint} is pinned; connection refused. If the server "
                "was really re-keyed, accept the new key: unity servers accept-host-key "
                f"{self.host}",
                server=self.host,
                offered=fingerprint,
                pinned=login.pinned_fingerprint,
            ) from None
        except asyncssh.PermissionDenied:
            proven = True
            auth = "key" if login.private_key is not None else "password"
            raise SSHAuthError(
                f"server {self.host!r} refused the {auth} login of {where} "
                f"(credential {login.credential!r})"
            ) from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise SSHConnectError(
                f"cannot connect to server {self.host!r} ({where}): {_describe(exc)}"
            ) from None
        finally:
            offered = client.offered
            if proven and offered is not None and login.pinned_fingerprint is None:
                await self.inventory.pin(
                    self.host,
                    key=offered.export_public_key("openssh").decode().strip(),
                    fingerprint=offered.get_fingerprint("sha256"),
                    actor=self.actor,
                )
        assert client.offered is not None
        self.host_key = HostKeyInfo(
            server=self.host,
            fingerprint=client.offered.get_fingerprint("sha256"),
            algorithm=client.offered.get_algorithm(),
            first_contact=login.pinned_fingerprint is None,
        )
        self._client = client
        return conn

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and self._client is not None and not self._client.closed:
                return self._conn
            self._conn = await self._connect()
            return self._conn

    async def connect(self) -> HostKeyInfo:
        """Connect and log in now (pinning on first contact); the host key seen."""

        async def run() -> HostKeyInfo:
            await self._connection()
            assert self.host_key is not None
            return self.host_key

        return await self._on_hub_loop(run)

    # -- commands ----------------------------------------------------------------------

    async def _start(self, command: str) -> asyncssh.SSHClientProcess[str]:
        cached = self._conn is not None
        try:
            conn = await self._connection()
            return await conn.create_process(command, encoding="utf-8", errors="replace")
        except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, asyncssh.DisconnectError):
            await self._drop()
            if not cached:
                raise SSHConnectError(f"server {self.host!r} dropped the connection") from None
        # The kept connection had gone stale (server restarted...): one fresh try.
        try:
            conn = await self._connection()
            return await conn.create_process(command, encoding="utf-8", errors="replace")
        except (asyncssh.Error, OSError) as exc:
            await self._drop()
            raise SSHConnectError(
                f"cannot run a command on server {self.host!r}: {_describe(exc)}"
            ) from None

    async def _run(self, args: tuple[str, ...], timeout: float, stdin: str | None) -> CommandResult:
        started = time.perf_counter()
        process = await self._start(shlex.join(args))
        try:
            if stdin is not None:
                process.stdin.write(stdin)
            process.stdin.write_eof()
            completed = await asyncio.wait_for(process.wait(check=False), timeout)
        except TimeoutError:
            # Before the OSError branch: TimeoutError is an OSError, but the link is fine.
            process.close()
            raise
        except (asyncssh.Error, OSError) as exc:
            process.close()
            await self._drop()
            raise SSHConnectError(
                f"connection to server {self.host!r} broke: {_describe(exc)}"
            ) from None
        except BaseException:
            process.close()
            raise
        status = completed.returncode if completed.returncode is not None else -1
        return CommandResult(
            args,
            str(completed.stdout or ""),
            str(completed.stderr or ""),
            status,
            time.perf_counter() - started,
        )

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        """Run ``argv`` on the server (quoted for its shell); ``TimeoutError`` after ``timeout``."""
        args = tuple(argv)
        if not args:
            raise ValueError("argv must name a command")
        return await self._on_hub_loop(lambda: self._run(args, timeout, stdin))

    @asynccontextmanager
    async def sftp(self) -> AsyncIterator[asyncssh.SFTPClient]:
        """An SFTP session on the server (hub loop only)."""
        conn = await self._connection()
        try:
            async with conn.start_sftp_client() as client:
                yield client
        except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost) as exc:
            await self._drop()
            raise SSHConnectError(f"no SFTP on server {self.host!r}: {_describe(exc)}") from None

    # -- closing -----------------------------------------------------------------------

    async def _drop(self) -> None:
        conn, self._conn, self._client = self._conn, None, None
        if conn is not None:
            conn.close()
            with suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(conn.wait_closed(), 5)

    async def close(self) -> None:
        """Close the connection (the next ``run`` reconnects)."""
        if self._loop.is_closed():
            return
        await self._on_hub_loop(self._drop)

    def __repr__(self) -> str:
        return f"SSHRunner(server={self.host!r})"


async def runner_for(
    db: Database,
    crypto: Keyring,
    server_name: str,
    *,
    actor: str,
    connect_timeout: float = 10.0,
) -> SSHRunner:
    """A runner for an inventory server (``CredentialNotFoundError`` if unknown).

    It connects on first use and keeps the connection; each (re)connection
    resolves the login credential (audited as a ``use`` by ``actor``).
    """
    inventory = Inventory(CredentialStore(db, crypto))
    await inventory.get(server_name)
    return SSHRunner(inventory, server_name, actor=actor, connect_timeout=connect_timeout)
