"""Installing and removing one SSH public key in a server's ``authorized_keys``.

Changes are exact: installing appends one line (nothing if the key is
already there, whatever its options or comment); removing deletes the lines
carrying that key and nothing else, so other keys, comments, options and
blank lines stay byte-identical. Before a change the file is copied to
``<file>.unity-backup-<UTC timestamp>``; the new content is written to a
temporary file, renamed over the original, then read back and compared.
Everything goes over SFTP, so the bytes are exactly what they were.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncssh

from unity.credentials.audit import AuditAction, record_detached
from unity.credentials.errors import AuthorizedKeysError, CredentialError, InvalidCredentialError
from unity.credentials.inventory import Inventory
from unity.credentials.ssh import SSHRunner

__all__ = [
    "KeyChange",
    "change_credential_key",
    "install_key",
    "key_identity",
    "remove_key",
    "resolve_path",
]

FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class KeyChange:
    """What an install or removal did."""

    path: str
    changed: bool
    backup: str | None
    lines: int


def key_identity(public_key: str) -> tuple[str, bytes]:
    """(algorithm, decoded key blob) of an OpenSSH public key line."""
    parts = public_key.split()
    if len(parts) < 2:
        raise InvalidCredentialError("not an OpenSSH public key line")
    try:
        return parts[0], base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCredentialError("not an OpenSSH public key line") from None


def _key_fields(line: bytes) -> tuple[str, bytes] | None:
    """(algorithm, blob) of an authorized_keys line, after any options; None for others.

    Options end at the first whitespace outside double quotes (as sshd reads them).
    """
    text = line.strip().decode("utf-8", errors="replace")
    if not text or text.startswith("#"):
        return None
    candidates = [text]
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            candidates.append(text[index:].lstrip())
            break
    for candidate in candidates:
        parts = candidate.split()
        if len(parts) >= 2:
            try:
                return parts[0], base64.b64decode(parts[1], validate=True)
            except (binascii.Error, ValueError):
                continue
    return None


def _matches(line: bytes, identity: tuple[str, bytes]) -> bool:
    fields = _key_fields(line)
    return fields is not None and fields[1] == identity[1]


def resolve_path(template: str, username: str) -> str:
    """Expand ``%u`` (user), ``%h`` (home: SFTP's start directory) and ``%%``."""
    expanded = (
        template.replace("%%", "\0").replace("%u", username).replace("%h", ".").replace("\0", "%")
    )
    return posixpath.normpath(expanded)


async def _read(sftp: asyncssh.SFTPClient, path: str) -> bytes | None:
    try:
        async with sftp.open(path, "rb") as handle:
            data = await handle.read()
    except asyncssh.SFTPNoSuchFile:
        return None
    except asyncssh.SFTPError as exc:
        raise AuthorizedKeysError(f"cannot read {path}: {exc.reason}") from None
    assert isinstance(data, bytes)
    return data


async def _write(sftp: asyncssh.SFTPClient, path: str, data: bytes, mode: int) -> None:
    async with sftp.open(path, "wb", asyncssh.SFTPAttrs(permissions=mode)) as handle:
        await handle.write(data)
    await sftp.chmod(path, mode)


async def _replace(
    runner: SSHRunner, template: str, username: str, change: str, public_key: str
) -> KeyChange:
    identity = key_identity(public_key)
    path = resolve_path(template, username)
    try:
        async with runner.sftp() as sftp:
            original = await _read(sftp, path)
            lines = (original or b"").splitlines(keepends=True)
            if change == "install":
                if any(_matches(line, identity) for line in lines):
                    return KeyChange(path, False, None, 0)
                prefix = original or b""
                if prefix and not prefix.endswith(b"\n"):
                    prefix += b"\n"
                updated = prefix + public_key.strip().encode() + b"\n"
            else:
                kept = [line for line in lines if not _matches(line, identity)]
                if len(kept) == len(lines):
                    return KeyChange(path, False, None, 0)
                updated = b"".join(kept)
            backup = None
            mode = FILE_MODE
            if original is None:
                directory = posixpath.dirname(path)
                if directory and not await sftp.exists(directory):
                    await sftp.makedirs(directory, asyncssh.SFTPAttrs(permissions=DIR_MODE))
            else:
                attrs = await sftp.stat(path)
                mode = (attrs.permissions or FILE_MODE) & 0o777
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
                backup = f"{path}.unity-backup-{stamp}"
                await _write(sftp, backup, original, FILE_MODE)
                if await _read(sftp, backup) != original:
                    raise AuthorizedKeysError(f"backup {backup} does not match {path}; unchanged")
            changed_lines = abs(len(updated.splitlines()) - len(lines))
            temporary = f"{path}.unity-tmp"
            await _write(sftp, temporary, updated, mode)
            await sftp.posix_rename(temporary, path)
            if await _read(sftp, path) != updated:
                raise AuthorizedKeysError(
                    f"{path} does not read back as written"
                    + (f"; the original is in {backup}" if backup else "")
                )
    except asyncssh.SFTPError as exc:
        raise AuthorizedKeysError(f"cannot change {path}: {exc.reason}") from None
    return KeyChange(path, True, backup, changed_lines)


async def install_key(runner: SSHRunner, *, path: str, username: str, public_key: str) -> KeyChange:
    """Append ``public_key`` unless that key is already authorized."""
    return await _replace(runner, path, username, "install", public_key)


async def remove_key(runner: SSHRunner, *, path: str, username: str, public_key: str) -> KeyChange:
    """Delete exactly the lines that carry ``public_key``."""
    return await _replace(runner, path, username, "remove", public_key)


async def change_credential_key(
    inventory: Inventory,
    *,
    server: str,
    credential: str,
    install: bool,
    actor: str,
    source: str | None = None,
    connect_timeout: float = 10.0,
) -> KeyChange:
    """Install (or remove) the public key of a stored SSH key on a server; audited."""
    action = AuditAction.INSTALL_KEY if install else AuditAction.REMOVE_KEY
    try:
        row = await inventory.store.get(credential)
        public_key = row.public.get("public_key")
        if not isinstance(public_key, str):
            raise InvalidCredentialError(
                f"credential {credential!r} is a {row.kind} without an SSH public key"
            )
        target = await inventory.get(server)
        runner = SSHRunner(
            inventory, server, actor=actor, source=source, connect_timeout=connect_timeout
        )
        try:
            operation = install_key if install else remove_key
            change = await operation(
                runner,
                path=target.authorized_keys_file,
                username=target.username,
                public_key=public_key,
            )
        finally:
            await runner.close()
    except CredentialError as exc:
        await record_detached(
            inventory.db,
            actor=actor,
            action=action,
            credential=credential,
            target=server,
            source=source,
            success=False,
            detail=str(exc),
        )
        raise
    detail = f"{change.path}: " + ("changed" if change.changed else "already so, unchanged")
    if change.backup:
        detail += f"; backup {change.backup}"
    await record_detached(
        inventory.db,
        actor=actor,
        action=action,
        credential=credential,
        target=server,
        source=source,
        detail=detail,
    )
    return change
