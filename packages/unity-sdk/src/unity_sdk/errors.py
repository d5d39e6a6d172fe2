"""Typed errors a plugin raises to tell the hub what went wrong.

A plugin never catches its own errors: it raises, and the hub maps the type to
a state, records the run and owns retries and backoff.

Exception hierarchy::

    UnityError
    ├── MetadataError              metadata or config schema is not valid
    ├── ConfigError                a config does not match the plugin's schema
    └── PluginError                raised from collect_data / health_check
        ├── PluginNotReadyError    transient: service starting, try again later
        ├── PluginAuthError        credentials refused; needs an operator
        ├── DependencyMissingError a command, package or permission is missing
        └── CollectionError        collection failed for any other reason

``PluginError.recoverable`` says whether retrying without operator action can
help; the hub backs off on every failure but marks unrecoverable ones as
failing at once.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CollectionError",
    "ConfigError",
    "DependencyMissingError",
    "MetadataError",
    "PluginAuthError",
    "PluginError",
    "PluginNotReadyError",
    "UnityError",
]


class UnityError(Exception):
    """Base class of every error the SDK defines."""


class MetadataError(UnityError):
    """A plugin's metadata, declared metrics or config schema is invalid."""


class ConfigError(UnityError):
    """A config does not validate against a plugin's schema.

    ``errors`` holds one entry per problem: ``{"loc": [...], "msg": "..."}``.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []


class PluginError(UnityError):
    """Base class of the errors a plugin raises while collecting."""

    recoverable: bool = True


class PluginNotReadyError(PluginError):
    """The monitored thing is not ready yet (starting, unreachable); retry later."""


class PluginAuthError(PluginError):
    """The monitored service refused the plugin's credentials."""

    recoverable = False


class DependencyMissingError(PluginError):
    """A required command, package or permission is not available on the host."""

    recoverable = False


class CollectionError(PluginError):
    """Collection failed for a reason not covered by a more specific error."""
