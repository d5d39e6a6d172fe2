"""The wire models of the external-plugin API, shared by hub and SDK.

The hub's routes and :class:`unity_sdk.HubClient` both import these, so the
two sides cannot drift apart. Endpoints (all under ``/api/plugins/v2``):

- ``POST /register`` (enrollment token) ``RegisterRequest`` -> ``RegisterResponse``
- ``GET /{id}/config`` (plugin key) -> ``PluginConfig``
- ``POST /{id}/metrics`` (plugin key) ``MetricBatch`` -> ``BatchAccepted``
- ``POST /{id}/health`` (plugin key) ``HealthReport`` -> ``HealthAccepted``
"""

from __future__ import annotations

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

from unity_sdk.metadata import HealthState
from unity_sdk.numbers import INT_MAX, require_storable_numbers

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_MAX_FUTURE_SKEW",
    "ENROLLMENT_PREFIX",
    "MAX_BATCH_SAMPLES",
    "BatchAccepted",
    "HealthAccepted",
    "HealthReport",
    "MetricBatch",
    "PluginConfig",
    "RegisterRequest",
    "RegisterResponse",
    "Sample",
    "batch_problems",
]

API_KEY_PREFIX = "unityk_"
ENROLLMENT_PREFIX = "unitye_"
MAX_BATCH_SAMPLES = 1000
MAX_HOST_LENGTH = 255
# How far ahead of the receiver's clock a sample may be dated. A sample from the
# future would stay the "latest" value for as long as it is ahead and outlive
# retention; a receiver passes its own limit as ``max_future_skew`` in the
# validation context (a ``timedelta``).
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Wire):
    """An external plugin introduces itself with its metadata (JSON form)."""

    metadata: dict[str, Any] = Field(
        description="PluginMetadata as JSON; config_schema as a JSON Schema"
    )
    hostname: str = Field(min_length=1, max_length=MAX_HOST_LENGTH)

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return require_storable_numbers(value, name="metadata")


class RegisterResponse(_Wire):
    """Returned once: the plugin's own API key is never shown again."""

    plugin_id: str
    api_key: str
    key_id: str


class Sample(_Wire):
    """One collected document about one host at one moment.

    The timestamp must be a UTC moment of years 1-9999 and not later than the
    receiver's clock plus ``max_future_skew``; every number in ``data`` must be
    storable (:mod:`unity_sdk.numbers`).
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
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
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
    details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
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
    details: dict[str, Any] = Field(default_factory=dict)
    buffered: int = Field(default=0, ge=0, le=INT_MAX, description="Samples waiting to be sent")
    dropped: int = Field(
        default=0, ge=0, le=INT_MAX, description="Samples dropped from a full buffer"
    )

    @field_validator("details")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return require_storable_numbers(value, name="details")


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
