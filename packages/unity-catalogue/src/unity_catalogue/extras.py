"""Which extra of ``unity-catalogue`` brings a plugin's client library.

The application plugins import their client library when they run, so a host
without it still lists them; when one is missing, the hub and the agent say
which extra to install (the names match ``[project.optional-dependencies]``).
"""

from __future__ import annotations

__all__ = ["EXTRAS", "install_hint"]

# Top-level module -> extra.
EXTRAS = {
    "asyncpg": "postgres",
    "asyncmy": "mysql",
    "redis": "redis",
    "aiomqtt": "mqtt",
    "paho": "mqtt",
    "dns": "dns",
    "cryptography": "tls",
}


def install_hint(exc: BaseException) -> str | None:
    """``"pip install 'unity-catalogue[redis]'"`` for a missing client library, else None."""
    name = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    extra = EXTRAS.get((name or "").split(".")[0])
    return f"pip install 'unity-catalogue[{extra}]'" if extra else None
