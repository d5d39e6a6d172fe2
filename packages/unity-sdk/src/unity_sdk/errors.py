"""Typed errors: what a plugin raises, and what the hub client raises.

A plugin never catches its own errors: it raises, and the hub maps the type to
a state, records the run and owns retries and backoff. The ``HubError`` branch
is the other direction: :class:`unity_sdk.HubClient` raises it when the hub
refuses a request or cannot be reached.

Exception hierarchy::

    UnityError
    ├── MetadataError              metadata or config schema is not valid
    ├── ConfigError                a config does not match the plugin's schema
    ├── BatchRefusedError          a metric batch breaks the acceptance rules
    ├── PluginError                raised from collect_data / health_check
    │   ├── PluginNotReadyError    transient: service starting, try again later
    │   ├── PluginAuthError        credentials refused; needs an operator
    │   ├── DependencyMissingError a command, package or permission is missing
    │   └── CollectionError        collection failed for any other reason
    │       └── DocumentTooLargeError  the document exceeds the hub's size limit
    └── HubError                   the hub refused a request or is unreachable
        ├── HubUnavailableError    connection failed, 5xx or 429 after all retries
        ├── HubAuthError           401/403: key revoked, unknown or another plugin's
        └── HubRequestError        any other 4xx (409, 413, 422...); never retried

``MetadataError.errors``, ``ConfigError.errors`` and ``BatchRefusedError.errors``
hold one ``{"loc", "msg"}`` entry per problem: the hub's 422 details.
``PluginError.recoverable`` says whether retrying without operator action can
help; the hub backs off on every failure but marks unrecoverable ones as
failing at once. ``HubError.status`` is the HTTP status (``None`` when no
answer came back), ``message`` the hub's own message and ``details`` its
structured details (for a 422, one ``{"loc", "msg"}`` entry per problem).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

__all__ = [
    "BatchRefusedError",
    "CollectionError",
    "ConfigError",
    "DependencyMissingError",
    "DocumentTooLargeError",
    "HubAuthError",
    "HubError",
    "HubRequestError",
    "HubUnavailableError",
    "MetadataError",
    "PluginAuthError",
    "PluginError",
    "PluginNotReadyError",
    "UnityError",
]


class UnityError(Exception):
    """Base class of every error the SDK defines."""


class MetadataError(UnityError):
    """A plugin's metadata, declared metrics or config schema is invalid.

    ``errors`` holds one entry per problem: ``{"loc": [...], "msg": "..."}``.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []


class ConfigError(UnityError):
    """A config does not validate against a plugin's schema.

    ``errors`` holds one entry per problem: ``{"loc": [...], "msg": "..."}``.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []


class BatchRefusedError(UnityError):
    """A metric batch from an external plugin was refused; nothing of it is stored.

    ``status`` is the HTTP status the hub answers (413 for too many samples,
    422 for an invalid one); ``errors`` names each sample and field at fault.
    """

    def __init__(
        self, status: int, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
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


class DocumentTooLargeError(CollectionError):
    """The collected document, serialized, is larger than the hub accepts.

    Raised by :func:`unity_sdk.encode_document`; the run fails and nothing of
    it is stored. Keep documents to current values, not histories or logs.
    """


class HubError(UnityError):
    """The hub refused a request or could not be reached.

    Never carries the API key or enrollment token in its message.
    """

    def __init__(self, message: str, *, status: int | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.message} (HTTP {self.status})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"


class HubUnavailableError(HubError):
    """The hub did not answer, or answered 5xx/429 until the retries ran out."""


class HubAuthError(HubError):
    """The hub refused the credential: 401 (unknown, expired or revoked) or 403."""


class HubRequestError(HubError):
    """The hub rejected the request itself (409, 413, 422...); retrying cannot help."""


# Not in this module's ``__all__``, which lists the error hierarchy only; the
# package exports it.
def error_details(
    errors: ValidationError | Iterable[Mapping[str, Any]],
    *prefix: str | int,
    str_loc: bool = False,
) -> list[dict[str, Any]]:
    """One ``{"loc": [...], "msg": "..."}`` per problem of a failed validation.

    The hub's 422 details, ``ConfigError.errors`` and the SDK's own answers all
    take this shape, so the conversion lives in one place. ``errors`` is a
    pydantic ``ValidationError`` or its ``errors()`` (FastAPI's request
    validation error hands over the latter); ``prefix`` goes before every
    ``loc``; ``str_loc`` turns each part of ``loc`` into text, for answers that
    promise string locations.
    """
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    details: list[dict[str, Any]] = []
    for e in items:
        loc = [*prefix, *e.get("loc", ())]
        details.append(
            {"loc": [str(part) for part in loc] if str_loc else loc, "msg": e.get("msg", "")}
        )
    return details


def error_lines(
    errors: ValidationError | Iterable[Mapping[str, Any]], *, whole: str = "(root)"
) -> list[str]:
    """One ``"field.path: message"`` line per problem, for people to read.

    ``errors`` is what :func:`error_details` takes, or its result; a problem
    with an empty ``loc`` is about the whole input and is named ``whole``.
    """
    return [
        f"{'.'.join(str(part) for part in d['loc']) or whole}: {d['msg']}"
        for d in error_details(errors)
    ]
