"""Secrets typed straight into a plugin config, sealed at rest.

A secret field of a plugin config may hold a plain value instead of a
``{"$credential": name}`` reference. The database never keeps that value: it
stores ``{"$sealed": {"kid": ..., "nonce": ..., "ct": ...}}``, sealed with the
credentials keyring (AES-256-GCM). The additional data binds the plugin id and
the field name, so a sealed value copied to another plugin or field fails
authentication. The hub opens sealed values when it reads a config from the
database; the plugin and the run path only ever see the real value.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from unity.credentials.crypto import Keyring, Sealed
from unity.credentials.errors import DecryptionError

__all__ = [
    "SEALED",
    "SealedValueError",
    "is_sealed",
    "key_ids",
    "needs_sealing",
    "open_config",
    "reseal_config",
    "seal_config",
]

SEALED = "$sealed"
_AAD_PREFIX = "unity-plugin-config/v1"


class SealedValueError(DecryptionError):
    """A sealed config value that does not open; names the field, never a value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def is_sealed(value: Any) -> bool:
    """Whether ``value`` is a sealed envelope ``{"$sealed": {...}}``."""
    return isinstance(value, Mapping) and set(value) == {SEALED}


def _aad(plugin_id: str, field: str) -> bytes:
    return "\0".join((_AAD_PREFIX, plugin_id, field)).encode()


def _plain(value: Any) -> bool:
    # Empty values and credential references carry no secret.
    if value is None or value == "" or is_sealed(value):
        return False
    return not (isinstance(value, Mapping) and "$credential" in value)


def _seal(keyring: Keyring, plugin_id: str, field: str, value: Any) -> dict[str, Any]:
    sealed = keyring.seal(json.dumps(value).encode(), aad=_aad(plugin_id, field))
    return {
        SEALED: {
            "kid": sealed.key_id,
            "nonce": base64.b64encode(sealed.nonce).decode(),
            "ct": base64.b64encode(sealed.ciphertext).decode(),
        }
    }


def _open(keyring: Keyring, plugin_id: str, field: str, value: Any) -> Any:
    what = f"sealed secret in field {field!r} of plugin {plugin_id!r}"
    envelope = value[SEALED]
    try:
        if not isinstance(envelope, Mapping):
            raise TypeError
        sealed = Sealed(
            base64.b64decode(envelope["ct"], validate=True),
            base64.b64decode(envelope["nonce"], validate=True),
            str(envelope["kid"]),
        )
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise SealedValueError(field, f"{what} is malformed") from None
    try:
        plaintext = keyring.open(sealed, aad=_aad(plugin_id, field), what=what)
    except DecryptionError as exc:
        raise SealedValueError(field, str(exc)) from None
    return json.loads(plaintext)


def needs_sealing(config: Mapping[str, Any], fields: Iterable[str]) -> bool:
    """Whether any of the secret ``fields`` holds a plain value."""
    return any(_plain(config.get(name)) for name in fields)


def seal_config(
    keyring: Keyring, plugin_id: str, config: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, Any]:
    """``config`` as the database keeps it: plain values of secret ``fields`` sealed."""
    secret = set(fields)
    return {
        key: (_seal(keyring, plugin_id, key, value) if key in secret and _plain(value) else value)
        for key, value in config.items()
    }


def open_config(
    keyring: Keyring, plugin_id: str, config: Mapping[str, Any], *, strict: bool = True
) -> dict[str, Any]:
    """``config`` as read from the database with every sealed value opened.

    ``SealedValueError`` when one does not open (altered, moved from another
    plugin or field, or sealed with a key not loaded); with ``strict=False``
    such fields are left out instead.
    """
    opened: dict[str, Any] = {}
    for key, value in config.items():
        if not is_sealed(value):
            opened[key] = value
            continue
        try:
            opened[key] = _open(keyring, plugin_id, key, value)
        except SealedValueError:
            if strict:
                raise
    return opened


def key_ids(config: Any) -> set[str]:
    """Ids of the master keys that sealed values in ``config``."""
    if not isinstance(config, Mapping):
        return set()
    return {
        str(value[SEALED].get("kid"))
        for value in config.values()
        if is_sealed(value) and isinstance(value[SEALED], Mapping)
    }


def reseal_config(
    keyring: Keyring, plugin_id: str, config: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    """``config`` with values sealed by an older key re-sealed with the current one,
    and how many were; ``SealedValueError`` when one does not open."""
    target = keyring.current.key_id
    resealed: dict[str, Any] = {}
    count = 0
    for key, value in config.items():
        if is_sealed(value) and key_ids({key: value}) != {target}:
            resealed[key] = _seal(keyring, plugin_id, key, _open(keyring, plugin_id, key, value))
            count += 1
        else:
            resealed[key] = value
    return resealed, count
