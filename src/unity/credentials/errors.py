"""Typed errors of the credentials store, the inventory and SSH.

None of them ever carries secret material: messages name credentials,
servers, key ids and fingerprints only, and errors raised while handling
secrets are raised ``from None`` so no chained exception leaks a value.

Exception hierarchy::

    CredentialError
    ├── MasterKeyError            master key missing, malformed, default or exposed
    ├── DecryptionError           ciphertext tampered, swapped or sealed with an unknown key
    ├── CredentialNotFoundError   no credential (or server) with that name
    ├── CredentialExistsError     the name is taken
    ├── CredentialInUseError      a server or plugin config still references it
    ├── InvalidCredentialError    key material or input that cannot be used
    └── SSHError                  talking to a server failed
        ├── HostKeyMismatchError  the server's host key is not the pinned one
        ├── SSHAuthError          the server refused the login
        ├── SSHConnectError       unreachable, timed out, or the connection broke
        └── AuthorizedKeysError   authorized_keys could not be changed or verified

The SSH errors are also SDK plugin errors (``PluginAuthError`` /
``PluginNotReadyError``), so a plugin collecting over SSH fails with the
state the hub expects without catching anything.
"""

from __future__ import annotations

from unity_sdk import CollectionError, PluginAuthError, PluginNotReadyError

__all__ = [
    "AuthorizedKeysError",
    "CredentialError",
    "CredentialExistsError",
    "CredentialInUseError",
    "CredentialNotFoundError",
    "DecryptionError",
    "HostKeyMismatchError",
    "InvalidCredentialError",
    "MasterKeyError",
    "SSHAuthError",
    "SSHConnectError",
    "SSHError",
]


class CredentialError(Exception):
    """Base class of every error of the credentials package."""


class MasterKeyError(CredentialError):
    """The master key is missing, malformed, a known default, or readable by others."""


class DecryptionError(CredentialError):
    """A sealed secret failed authentication: tampered, moved between rows, or wrong key."""


class CredentialNotFoundError(CredentialError, LookupError):
    """No credential (or server) with that name."""


class CredentialExistsError(CredentialError):
    """A credential (or server) with that name already exists."""


class CredentialInUseError(CredentialError):
    """The credential (or server) is still referenced and cannot be deleted."""


class InvalidCredentialError(CredentialError, ValueError):
    """The input cannot be used: unreadable key, certificate and key do not match..."""


class SSHError(CredentialError):
    """Talking to a server over SSH failed."""


class HostKeyMismatchError(SSHError, PluginAuthError):
    """The server offered a host key other than the pinned one; an admin must accept it."""

    def __init__(self, message: str, *, server: str, offered: str, pinned: str) -> None:
        super().__init__(message)
        self.server = server
        self.offered = offered
        self.pinned = pinned


class SSHAuthError(SSHError, PluginAuthError):
    """The server refused the login (wrong password or key not authorized)."""


class SSHConnectError(SSHError, PluginNotReadyError):
    """The server could not be reached, timed out, or dropped the connection."""


class AuthorizedKeysError(SSHError, CollectionError):
    """``authorized_keys`` could not be read, written or verified."""
