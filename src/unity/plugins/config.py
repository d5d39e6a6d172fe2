"""Validating a plugin's config against its schema.

A stored config is a JSON object. Two keys belong to the hub and are checked
here rather than by the plugin's schema: ``interval`` (seconds between runs)
and ``retention_days``. Everything else must satisfy the plugin's
``config_schema`` (a pydantic model or a JSON Schema). Fields the schema marks
secret (pydantic ``SecretStr``: ``writeOnly``/``format: password``) are never
returned by the API: they read back as ``MASK``, and writing ``MASK`` keeps the
stored value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError

from unity_sdk import ConfigError, MetadataError, PluginMetadata

__all__ = ["MASK", "RESERVED_KEYS", "ValidatedConfig", "check_schema", "mask_secrets", "validate"]

MASK = "********"
RESERVED_KEYS = frozenset({"interval", "retention_days"})
MIN_INTERVAL = 1.0


@dataclass(frozen=True)
class ValidatedConfig:
    """A config that passed validation.

    ``stored`` is what the database keeps (as given, secrets included);
    ``plugin`` is what the plugin sees (defaults filled in, hub keys removed).
    """

    stored: dict[str, Any]
    plugin: dict[str, Any]
    interval: float | None
    retention_days: int | None


def check_schema(metadata: PluginMetadata) -> None:
    """Raise ``MetadataError`` if the plugin's config schema is unusable."""
    schema = metadata.config_schema
    try:
        if isinstance(schema, dict):
            jsonschema.Draft202012Validator.check_schema(schema)
        elif schema is not None:
            schema.model_json_schema()
    except (jsonschema.SchemaError, TypeError, ValueError) as exc:
        raise MetadataError(f"config schema of {metadata.id!r} is invalid: {exc}") from exc


def secret_fields(metadata: PluginMetadata) -> set[str]:
    """Top-level config properties the schema marks as secret."""
    properties = metadata.config_json_schema().get("properties", {})
    return {name for name, prop in properties.items() if _is_secret(prop)}


def _is_secret(prop: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    if prop.get("writeOnly") is True or prop.get("format") == "password":
        return True
    # Optional fields (``SecretStr | None``) carry the marker one level down.
    return any(_is_secret(option) for key in ("anyOf", "oneOf") for option in prop.get(key, []))


def mask_secrets(metadata: PluginMetadata, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every secret field replaced by ``MASK``."""
    secrets = secret_fields(metadata)
    return {k: (MASK if k in secrets and v not in (None, "") else v) for k, v in config.items()}


def _hub_keys(
    raw: Mapping[str, Any], errors: list[dict[str, Any]]
) -> tuple[float | None, int | None]:
    interval = raw.get("interval")
    retention = raw.get("retention_days")
    if interval is not None and (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not MIN_INTERVAL <= interval <= 86400
    ):
        errors.append({"loc": ["interval"], "msg": "must be a number of seconds from 1 to 86400"})
        interval = None
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= 3650
    ):
        errors.append({"loc": ["retention_days"], "msg": "must be a whole number of days, 1-3650"})
        retention = None
    return (float(interval) if interval is not None else None), retention


def _validate_model(
    model: type[BaseModel], data: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        return {}, [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return instance.model_dump(), []


def _validate_json_schema(
    schema: dict[str, Any], data: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        {"loc": list(error.absolute_path), "msg": error.message}
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    filled = {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, dict) and "default" in prop
    }
    filled.update(data)
    return filled, errors


def validate(
    metadata: PluginMetadata,
    raw: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None = None,
) -> ValidatedConfig:
    """Validate ``raw`` for the plugin; ``ConfigError`` lists every problem.

    ``previous`` is the stored config: secret fields sent back as ``MASK``
    keep their stored value.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("config must be a JSON object", [{"loc": [], "msg": "not an object"}])
    stored = dict(raw)
    if previous:
        for name in secret_fields(metadata):
            if stored.get(name) == MASK and name in previous:
                stored[name] = previous[name]
    errors: list[dict[str, Any]] = []
    interval, retention = _hub_keys(stored, errors)
    data = {k: v for k, v in stored.items() if k not in RESERVED_KEYS}
    schema = metadata.config_schema
    schema_errors: list[dict[str, Any]]
    if schema is None:
        plugin_config, schema_errors = data, []
    elif isinstance(schema, dict):
        plugin_config, schema_errors = _validate_json_schema(schema, data)
    else:
        plugin_config, schema_errors = _validate_model(schema, data)
    errors.extend(schema_errors)
    if errors:
        raise ConfigError(f"invalid config for plugin {metadata.id!r}", errors)
    return ValidatedConfig(stored, plugin_config, interval, retention)
