"""The wire models of the external-plugin API, shared by hub and SDK.

The hub's routes and :class:`unity_sdk.HubClient` both import these, so the
two sides cannot drift apart. Endpoints (all under ``/api/plugins/v2``):

- ``POST /register`` (enrollment token) ``RegisterRequest`` -> ``RegisterResponse``
- ``GET /{id}/config`` (plugin key) -> ``PluginConfig``
- ``POST /{id}/metrics`` (plugin key) ``MetricBatch`` -> ``BatchAccepted``
- ``POST /{id}/health`` (plugin key) ``HealthReport`` -> ``HealthAccepted``
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import to_json

from unity_sdk._numbers import INT_MAX, require_storable_numbers
from unity_sdk.errors import error_details
from unity_sdk.metadata import HealthState

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_MAX_FUTURE_SKEW",
    "ENROLLMENT_PREFIX",
    "ERROR_CODES",
    "KEY_SECRET_PATTERN",
    "MAX_BATCH_SAMPLES",
    "MAX_HEALTH_DETAILS_BYTES",
    "MAX_HEALTH_REPORT_BYTES",
    "BatchAccepted",
    "HealthAccepted",
    "HealthReport",
    "MetricBatch",
    "PluginConfig",
    "RegisterRequest",
    "RegisterResponse",
    "Sample",
    "batch_problems",
    "json_size",
    "new_key_secret",
]

API_KEY_PREFIX = "unityk_"
ENROLLMENT_PREFIX = "unitye_"
MAX_BATCH_SAMPLES = 1000
MAX_HOST_LENGTH = 255
# Health details are a few counters and notes, shown on the dashboard and kept
# in the plugin's registry row: not a place for logs or dumps.
MAX_HEALTH_DETAILS_BYTES = 64 * 1024
# The whole report body; room for the message and for \u escapes of non-ASCII text.
MAX_HEALTH_REPORT_BYTES = 4 * MAX_HEALTH_DETAILS_BYTES


# Every error answers ``{"error": {"code", "message", "details"}}``; ``code``
# follows from the status (``"error"`` for any other).
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what the hub stores)."""
    return len(to_json(value, fallback=str))


# The secret part of a plugin key: 256 random bits, URL-safe base64 without padding.
KEY_SECRET_PATTERN = r"^[A-Za-z0-9_-]{43}$"


def new_key_secret() -> str:
    """A fresh secret for the key a plugin proposes when it registers."""
    return secrets.token_urlsafe(32)


# How far ahead of the receiver's clock a sample may be dated. A sample from the
# future would stay the "latest" value for as long as it is ahead and outlive
# retention; a receiver passes its own limit as ``max_future_skew`` in the
# validation context (a ``timedelta``).
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)

# A validation context key for the rulebook alone: ``True`` when every number
# of the JSON text being validated was proven storable before it was parsed
# (:func:`unity_sdk._numbers.json_numbers_storable`), so no sample walks its data.
NUMBERS_CHECKED = "unity_sdk.numbers_checked"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Wire):
    """An external plugin introduces itself with its metadata (JSON form)."""

    metadata: dict[str, Any] = Field(
        description="PluginMetadata as JSON; config_schema as a JSON Schema"
    )
    hostname: str = Field(min_length=1, max_length=MAX_HOST_LENGTH)
    key_secret: str | None = Field(
        default=None,
        pattern=KEY_SECRET_PATTERN,
        # The proposed secret is the plugin's future key: never in a repr or a log line.
        repr=False,
        description=(
            "The secret of the API key the plugin proposes (see new_key_secret); the hub "
            "stores only its hash. Repeating a registration with the same enrollment "
            "token, plugin id and key_secret returns the same key without spending "
            "another use of the token. Without it the hub chooses the secret."
        ),
    )

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return require_storable_numbers(value, name="metadata")


class RegisterResponse(_Wire):
    """Returned once (and again to a retry with the same ``key_secret``): the
    plugin's own API key is never shown otherwise."""

    plugin_id: str
    api_key: str
    key_id: str


class Sample(_Wire):
    """One collected document about one host at one moment.

    The timestamp must be a UTC moment of years 1-9999 and not later than the
    receiver's clock plus ``max_future_skew``; every number in ``data`` must be
    storable (:mod:`unity_sdk._numbers`).
    """

    host: str = Field(min_length=1, max_length=MAX_HOST_LENGTH)
    timestamp: AwareDatetime
    data: dict[str, Any]

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime, info: ValidationInfo) -> datetime:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError(
                f"timestamp {value.isoformat()} is outside years 1-9999 once converted to UTC"
            ) from None
        context = info.context if isinstance(info.context, dict) else {}
        skew = context.get("max_future_skew", DEFAULT_MAX_FUTURE_SKEW)
        if value > datetime.now(UTC) + skew:
            raise ValueError(
                f"timestamp {value.isoformat()} is more than {skew.total_seconds():g} seconds "
                "ahead of the hub's clock"
            )
        return value

    @field_validator("data")
    @classmethod
    def _storable(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        context = info.context
        if isinstance(context, dict) and context.get(NUMBERS_CHECKED) is True:
            return value
        return require_storable_numbers(value, name="data")


class MetricBatch(_Wire):
    """A batch of samples, stored whole or not at all.

    ``batch_id`` makes retries safe: the hub stores a given id once and
    answers a repeat with ``duplicate: true``.
    """

    batch_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    samples: list[Sample] = Field(min_length=1)


def batch_problems(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """The 422 answer to a batch that failed validation: a message naming the
    first bad sample, and one ``{"loc", "msg"}`` per problem."""
    details = error_details(exc)
    bad = [d["loc"][1] for d in details if d["loc"][:1] == ["samples"] and len(d["loc"]) > 1]
    message = f"sample {bad[0]} is invalid; nothing was stored" if bad else "batch is invalid"
    return message, details


class BatchAccepted(_Wire):
    stored: int
    duplicate: bool = False


class HealthReport(_Wire):
    """An external plugin's own health, with its buffer state."""

    status: HealthState
    message: str = Field(default="", max_length=2000)
    details: dict[str, Any] = Field(
        default_factory=dict,
        description=f"At most {MAX_HEALTH_DETAILS_BYTES} bytes as JSON",
    )
    buffered: int = Field(default=0, ge=0, le=INT_MAX, description="Samples waiting to be sent")
    dropped: int = Field(
        default=0, ge=0, le=INT_MAX, description="Samples dropped from a full buffer"
    )

    @field_validator("details")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return require_storable_numbers(value, name="details")

    @field_validator("details")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = json_size(value)
        if size > MAX_HEALTH_DETAILS_BYTES:
            raise ValueError(
                f"details are {size} bytes as JSON; at most {MAX_HEALTH_DETAILS_BYTES} bytes"
            )
        return value


class HealthAccepted(_Wire):
    plugin_id: str
    status: HealthState
    received_at: datetime


class PluginConfig(_Wire):
    """A plugin's config as ``GET /{id}/config`` returns it.

    To a plugin's own key ``config`` holds real values (what the plugin runs
    with); to people's tokens secret fields read back as ``********``.
    """

    plugin_id: str
    config: dict[str, Any]
    interval: float | None = Field(description="Seconds between runs")
    enabled: bool
    config_schema: dict[str, Any] = Field(default_factory=dict)
