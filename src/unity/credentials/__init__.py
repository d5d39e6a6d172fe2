"""The credentials store ("KC-Booth"), the server inventory and SSH targets.

Secrets are sealed with AES-256-GCM under a master key kept outside the
database (:mod:`.crypto`); the tables are in :mod:`unity.storage.models`; :mod:`.store`
creates, resolves, reveals and re-keys credentials, auditing every use
(:mod:`.audit`); :mod:`.inventory` keeps servers and their pinned host keys;
:mod:`.ssh` runs plugin commands on them; :mod:`.authorized_keys` installs
and removes SSH public keys exactly. See ``docs/credentials.md``.

The SSH names (:mod:`.ssh`, :mod:`.authorized_keys`) load asyncssh, so they
are imported on first use: a hub without SSH targets never loads it.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from unity.credentials.audit import AuditAction
from unity.credentials.crypto import Keyring, MasterKey, Sealed, load_keyring
from unity.credentials.errors import (
    AuthorizedKeysError,
    CredentialError,
    CredentialExistsError,
    CredentialInUseError,
    CredentialNotFoundError,
    DecryptionError,
    HostKeyMismatchError,
    InvalidCredentialError,
    MasterKeyError,
    SSHAuthError,
    SSHConnectError,
    SSHError,
)
from unity.credentials.inventory import LOCAL_TARGET, Inventory, LoginTarget
from unity.credentials.schemas import CredentialInput, CredentialKind, ServerInput, ServerUpdate
from unity.credentials.store import (
    CREDENTIAL_REF,
    CredentialStore,
    ResolvedCredential,
    RotationReport,
)
from unity.storage.models import Credential, CredentialAudit, Server

if TYPE_CHECKING:
    from unity.credentials.authorized_keys import KeyChange, change_credential_key
    from unity.credentials.ssh import HostKeyInfo, SSHRunner, runner_for

_LAZY = {
    "KeyChange": "unity.credentials.authorized_keys",
    "change_credential_key": "unity.credentials.authorized_keys",
    "HostKeyInfo": "unity.credentials.ssh",
    "SSHRunner": "unity.credentials.ssh",
    "runner_for": "unity.credentials.ssh",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CREDENTIAL_REF",
    "LOCAL_TARGET",
    "AuditAction",
    "AuthorizedKeysError",
    "Credential",
    "CredentialAudit",
    "CredentialError",
    "CredentialExistsError",
    "CredentialInUseError",
    "CredentialInput",
    "CredentialKind",
    "CredentialNotFoundError",
    "CredentialStore",
    "DecryptionError",
    "HostKeyInfo",
    "HostKeyMismatchError",
    "InvalidCredentialError",
    "Inventory",
    "KeyChange",
    "Keyring",
    "LoginTarget",
    "MasterKey",
    "MasterKeyError",
    "ResolvedCredential",
    "RotationReport",
    "SSHAuthError",
    "SSHConnectError",
    "SSHError",
    "SSHRunner",
    "Sealed",
    "Server",
    "ServerInput",
    "ServerUpdate",
    "change_credential_key",
    "load_keyring",
    "runner_for",
]
