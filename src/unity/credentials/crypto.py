"""The master key and the AES-256-GCM envelope that seals every secret.

The master key never enters the database. It comes from ``UNITY_MASTER_KEY``
(base64 of 32 random bytes) or from ``<data dir>/master.key``, created with
mode 0600 on first start. The hub refuses keys that are malformed, too
short, known defaults (all-zero...) and key files that others can read.

Each secret is sealed with a fresh 96-bit nonce; the additional data binds
the credential's identity (id, kind, name), so a flipped byte or a
ciphertext copied onto another row fails authentication. Every sealed value
records the id of the key that sealed it (first 8 hex digits of its SHA-256),
which is how a master-key rotation tells rows already re-sealed from the
rest. During a rotation the previous key stays loadable from
``UNITY_MASTER_KEY_PREVIOUS`` or ``master.key.previous``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from unity.credentials.errors import DecryptionError, MasterKeyError
from unity.settings import Settings
from unity.storage.private import private_dir

__all__ = [
    "KEY_FILE",
    "PREVIOUS_KEY_FILE",
    "Keyring",
    "MasterKey",
    "Sealed",
    "create_key_file",
    "load_keyring",
    "read_key_file",
]

KEY_FILE = "master.key"
PREVIOUS_KEY_FILE = "master.key.previous"
KEY_BYTES = 32
NONCE_BYTES = 12
_GENERATE_HINT = (
    'generate one with: python -c "import base64, os; '
    'print(base64.b64encode(os.urandom(32)).decode())"'
)
# Keys seen in examples and placeholders; a real key is 32 random bytes.
_KNOWN_DEFAULTS = frozenset(
    {bytes(KEY_BYTES), bytes(range(KEY_BYTES)), bytes(range(1, KEY_BYTES + 1))}
)
_MIN_DISTINCT_BYTES = 12


def _weakness(material: bytes) -> str | None:
    if material in _KNOWN_DEFAULTS or len(set(material)) < _MIN_DISTINCT_BYTES:
        return "is a known default or has far too little randomness (e.g. all zero bytes)"
    if all(32 <= byte < 127 for byte in material):
        return "decodes to printable text, not random bytes (a password is not a key)"
    return None


@dataclass(frozen=True)
class MasterKey:
    """A 256-bit master key and where it came from (never printed)."""

    material: bytes = field(repr=False)
    source: str

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise MasterKeyError(
                f"the master key from {self.source} is {len(self.material)} bytes; "
                f"{KEY_BYTES} are needed ({_GENERATE_HINT})"
            )
        weakness = _weakness(self.material)
        if weakness:
            raise MasterKeyError(f"the master key from {self.source} {weakness}; {_GENERATE_HINT}")

    @property
    def key_id(self) -> str:
        """First 8 hex digits of the key's SHA-256: recorded with every sealed value."""
        return hashlib.sha256(self.material).hexdigest()[:8]

    @classmethod
    def generate(cls, source: str) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES), source)

    @classmethod
    def from_text(cls, text: str, *, source: str) -> MasterKey:
        """Decode base64 (standard or URL-safe); errors never echo the text."""
        cleaned = text.strip()
        if not cleaned:
            raise MasterKeyError(f"the master key from {source} is empty; {_GENERATE_HINT}")
        try:
            altchars = b"-_" if ("-" in cleaned or "_" in cleaned) else None
            material = base64.b64decode(cleaned, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError(
                f"the master key from {source} is not valid base64 "
                f"(expected base64 of {KEY_BYTES} random bytes; {_GENERATE_HINT})"
            ) from None
        return cls(material, source)

    def encode(self) -> str:
        return base64.b64encode(self.material).decode()

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id!r}, source={self.source!r})"


@dataclass(frozen=True)
class Sealed:
    """A sealed secret as stored: ciphertext (with GCM tag), nonce and key id."""

    ciphertext: bytes
    nonce: bytes
    key_id: str


def read_key_file(path: Path) -> MasterKey:
    """Read a key file; refuse one that group or others may access."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise MasterKeyError(f"master key file {path} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise MasterKeyError(f"master key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise MasterKeyError(
            f"master key file {path} is accessible by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    return MasterKey.from_text(path.read_text(encoding="ascii", errors="replace"), source=str(path))


def create_key_file(path: Path, key: MasterKey | None = None) -> MasterKey:
    """Write ``key`` (default: a new random one) to ``path`` with mode 0600; never overwrites."""
    key = key or MasterKey.generate(str(path))
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.encode() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return MasterKey(key.material, str(path))


def _env_key(value: SecretStr | None, name: str) -> MasterKey | None:
    if value is None or not value.get_secret_value().strip():
        return None
    return MasterKey.from_text(value.get_secret_value(), source=name)


def _has_env_key(settings: Settings) -> bool:
    key = settings.master_key
    return key is not None and bool(key.get_secret_value().strip())


def _load(settings: Settings, *, create: bool) -> tuple[MasterKey, list[MasterKey]]:
    current = _env_key(settings.master_key, "UNITY_MASTER_KEY")
    if current is None:
        path = settings.data_dir / KEY_FILE
        if not path.exists() and create:
            # Another process may create it first: then read theirs.
            with contextlib.suppress(FileExistsError):
                create_key_file(path)
        current = read_key_file(path)
    previous: list[MasterKey] = []
    env_previous = _env_key(settings.master_key_previous, "UNITY_MASTER_KEY_PREVIOUS")
    if env_previous is not None:
        previous.append(env_previous)
    previous_file = settings.data_dir / PREVIOUS_KEY_FILE
    if previous_file.exists():
        previous.append(read_key_file(previous_file))
    return current, [key for key in previous if key.key_id != current.key_id]


def _signature(settings: Settings) -> tuple[object, ...]:
    def one(path: Path) -> object:
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size, info.st_mode)

    return (one(settings.data_dir / KEY_FILE), one(settings.data_dir / PREVIOUS_KEY_FILE))


class Keyring:
    """The current master key (seals) and any previous ones (open only).

    A keyring loaded from the settings follows its key files: when
    ``unity credentials rotate-master-key`` replaces them while the hub runs,
    the next seal or open picks the new files up.
    """

    def __init__(
        self,
        current: MasterKey,
        previous: Sequence[MasterKey] = (),
        *,
        settings: Settings | None = None,
    ) -> None:
        # Keys from files are followed (a rotation may replace them); env keys are fixed.
        self._settings = settings if settings is not None and not _has_env_key(settings) else None
        self._signature = _signature(settings) if settings is not None else None
        self._set(current, previous)

    def _set(self, current: MasterKey, previous: Sequence[MasterKey]) -> None:
        self.current = current
        self._keys = {key.key_id: key for key in previous}
        self._keys[current.key_id] = current

    def _refresh(self) -> None:
        if self._settings is None:
            return
        signature = _signature(self._settings)
        if signature != self._signature:
            current, previous = _load(self._settings, create=False)
            self._set(current, previous)
            self._signature = signature

    @property
    def key_ids(self) -> frozenset[str]:
        self._refresh()
        return frozenset(self._keys)

    def seal(self, plaintext: bytes, *, aad: bytes) -> Sealed:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._refresh()
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self.current.material).encrypt(nonce, plaintext, aad)
        return Sealed(ciphertext, nonce, self.current.key_id)

    def open(self, sealed: Sealed, *, aad: bytes, what: str = "secret") -> bytes:
        """Decrypt and authenticate; ``DecryptionError`` (without detail) on any failure."""
        # Imported on first use: a hub with nothing sealed never loads cryptography.
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._refresh()
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise DecryptionError(
                f"{what} is sealed with master key {sealed.key_id}, which is not loaded "
                f"(current key {self.current.key_id}); set UNITY_MASTER_KEY_PREVIOUS "
                f"or restore {PREVIOUS_KEY_FILE} to read it"
            )
        try:
            return AESGCM(key.material).decrypt(sealed.nonce, sealed.ciphertext, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError(
                f"{what} failed authentication: it was altered, copied from another "
                "credential, or sealed with a different master key"
            ) from None

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.key_id!r}, keys={sorted(self._keys)!r})"


def load_keyring(settings: Settings, *, create: bool = True) -> Keyring:
    """The keyring the settings name; creates ``master.key`` on first start.

    Raises ``MasterKeyError`` for a malformed, default or exposed key.
    """
    current, previous = _load(settings, create=create)
    return Keyring(current, previous, settings=settings)
