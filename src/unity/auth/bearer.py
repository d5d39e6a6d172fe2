"""Shared mechanics of every bearer secret the hub issues.

All of them look like ``<prefix><id>_<secret>``: the prefix says what it is
(``unity_`` hub token, ``unitye_`` enrollment token, ``unityk_`` plugin key),
the id is the database key, and only the SHA-256 of the 256-bit secret is
stored. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

__all__ = ["compose", "hash_secret", "issue", "matches", "parse"]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 12
_SECRET = r"[A-Za-z0-9_-]{43}"
_SECRET_RE = rf"([a-z0-9]{{12}})_({_SECRET})"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(prefix: str, secret: str | None = None) -> tuple[str, str, str]:
    """A new ``(id, value, secret_hash)``; ``value`` is the only copy of the secret.

    ``secret`` is one the holder chose (an external plugin proposes its key's
    secret so that a retried registration can be recognised); it must have
    the shape of a generated one.
    """
    secret_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    if secret is None:
        secret = secrets.token_urlsafe(32)
    elif re.fullmatch(_SECRET, secret) is None:
        raise ValueError("a proposed secret must be 43 URL-safe base64 characters")
    return secret_id, compose(prefix, secret_id, secret), hash_secret(secret)


def compose(prefix: str, secret_id: str, secret: str) -> str:
    """The bearer value of ``secret_id`` and ``secret``."""
    return f"{prefix}{secret_id}_{secret}"


def parse(prefix: str, value: str) -> tuple[str, str] | None:
    """``(id, secret)`` when ``value`` has the shape of a ``prefix`` secret, else None."""
    match = re.fullmatch(re.escape(prefix) + _SECRET_RE, value)
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
