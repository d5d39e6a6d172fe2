"""Validating a plugin's config against its schema.

A stored config is a JSON object. Two keys belong to the hub and are checked
here rather than by the plugin's schema: ``interval`` (seconds between runs)
and ``retention_days``. Everything else must satisfy the plugin's
``config_schema`` (a pydantic model or a JSON Schema). Fields the schema marks
secret (pydantic ``SecretStr``: ``writeOnly``/``format: password``) are never
returned by the API: they read back as ``MASK``, and writing ``MASK`` keeps the
stored value.

A secret field may instead hold a reference to the credentials store,
``{"$credential": "<name>"}``: it is shown as is, and the hub puts the secret
in its place only when it runs the plugin. Plugins that collect remotely
(``supports_remote``) also take the hub key ``targets``: a list of inventory
server names (``"local"`` is the hub itself).

A JSON Schema must be self-contained (see :mod:`unity.plugins.schemas`): the
hub never fetches a ``$ref``. Schemas of external plugins come from outside
the hub, so :func:`validate_foreign` checks configs against them on a worker
thread with a time limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError
from referencing.exceptions import Unresolvable

from unity.plugins.schemas import SELF_CONTAINED, reference_problems, run_bounded
from unity_sdk import ConfigError, MetadataError, PluginMetadata, error_details

__all__ = [
    "CREDENTIAL_REF",
    "LOCAL_TARGET",
    "MASK",
    "RESERVED_KEYS",
    "ValidatedConfig",
    "check_off_loop",
    "check_schema",
    "credential_reference",
    "mask_secrets",
    "plugin_view",
    "plugin_view_foreign",
    "validate",
    "validate_foreign",
]

MASK = "********"
RESERVED_KEYS = frozenset({"interval", "retention_days", "targets"})
CREDENTIAL_REF = "$credential"
LOCAL_TARGET = "local"
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MIN_INTERVAL = 1.0


@dataclass(frozen=True)
class ValidatedConfig:
    """A config that passed validation.

    ``stored`` is what the database keeps (as given, secrets included);
    ``plugin`` is what the plugin sees (defaults filled in, hub keys removed;
    a referenced credential stands there as a placeholder until the hub
    resolves it). ``references`` maps secret fields to credential names.
    """

    stored: dict[str, Any]
    plugin: dict[str, Any]
    interval: float | None
    retention_days: int | None
    targets: tuple[str, ...] = ()
    references: dict[str, str] = field(default_factory=dict)


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
    except RecursionError as exc:
        raise MetadataError(f"config schema of {metadata.id!r} is nested too deeply") from exc
    if isinstance(schema, dict):
        problems = reference_problems(schema)
        if problems:
            raise MetadataError(
                f"config schema of {metadata.id!r} must be self-contained (references "
                f"start with '#' and resolve within it): {'; '.join(problems[:10])}"
            )
    clashes = sorted(RESERVED_KEYS & set(metadata.config_json_schema().get("properties", {})))
    if clashes:
        raise MetadataError(
            f"config schema of {metadata.id!r} declares {', '.join(clashes)}: "
            "those keys belong to the hub (rename the plugin's field)"
        )


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


def credential_reference(value: Any) -> str | None:
    """The credential name when ``value`` is ``{"$credential": "<name>"}``, else None."""
    if isinstance(value, Mapping) and set(value) == {CREDENTIAL_REF}:
        name = value[CREDENTIAL_REF]
        return name if isinstance(name, str) and name else None
    return None


def mask_secrets(metadata: PluginMetadata, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every secret field replaced by ``MASK`` (references stay as they are)."""
    secrets = secret_fields(metadata)
    return {
        k: (MASK if k in secrets and v not in (None, "") and credential_reference(v) is None else v)
        for k, v in config.items()
    }


def _references(
    metadata: PluginMetadata, stored: Mapping[str, Any], errors: list[dict[str, Any]]
) -> dict[str, str]:
    secrets = secret_fields(metadata)
    found: dict[str, str] = {}
    for key, value in stored.items():
        if not (isinstance(value, Mapping) and CREDENTIAL_REF in value):
            continue
        name = credential_reference(value)
        if name is None:
            message = 'a credential reference is {"$credential": "<name>"}'
            errors.append({"loc": [key], "msg": message})
        elif key not in secrets:
            errors.append({"loc": [key], "msg": "a credential can only stand in a secret field"})
        else:
            found[key] = name
    return found


def _targets(
    metadata: PluginMetadata, raw: Mapping[str, Any], errors: list[dict[str, Any]]
) -> tuple[str, ...]:
    targets = raw.get("targets")
    if targets is None:
        return ()
    problem = None
    if not metadata.supports_remote:
        problem = f"plugin {metadata.id!r} does not collect remotely"
    elif (
        not isinstance(targets, list)
        or not all(isinstance(t, str) and _TARGET.match(t) for t in targets)
        or len(set(targets)) != len(targets)
    ):
        problem = "must be a list of distinct server names ('local' is the hub)"
    elif metadata.isolation.value == "process" and set(targets) - {LOCAL_TARGET}:
        problem = "a process-isolated plugin can only collect locally"
    if problem:
        errors.append({"loc": ["targets"], "msg": problem})
        return ()
    return tuple(targets)


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
        return {}, error_details(exc)
    return instance.model_dump(), []


def _message(error: jsonschema.ValidationError, secrets: set[str]) -> str:
    # jsonschema quotes the offending value ("'hunter2' is too long"); a secret
    # must not come back in the answer or reach a log line.
    path = list(error.absolute_path)
    if path and path[0] in secrets:
        return f"does not satisfy the schema's {error.validator!r} rule (the value is secret)"
    return error.message


def _without_secrets(
    errors: list[dict[str, Any]], data: Mapping[str, Any], secrets: set[str]
) -> list[dict[str, Any]]:
    """``errors`` with every message that quotes a secret value replaced."""
    values = [v for k, v in data.items() if k in secrets and isinstance(v, str) and v]
    quoted = [form for v in values for form in (v, repr(v)[1:-1])]
    hidden = "does not satisfy the schema (the message would show a secret value)"
    return [{**e, "msg": hidden} if any(q in str(e["msg"]) for q in quoted) else e for e in errors]


def _validate_json_schema(
    plugin_id: str, schema: dict[str, Any], data: dict[str, Any], secrets: set[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    validator = jsonschema.Draft202012Validator(schema, registry=SELF_CONTAINED)
    try:
        found = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    except Unresolvable as exc:
        # Stored before registration checked references, or broken since: the
        # schema is at fault, not the config, and nothing is ever fetched.
        problem = f"reference {exc.ref!r} does not resolve within the schema"
        raise ConfigError(
            f"the config schema of plugin {plugin_id!r} is unusable: {problem}",
            [{"loc": [], "msg": problem}],
        ) from None
    except RecursionError:
        problem = "its references loop without end"
        raise ConfigError(
            f"the config schema of plugin {plugin_id!r} is unusable: {problem}",
            [{"loc": [], "msg": problem}],
        ) from None
    errors = [
        {"loc": list(error.absolute_path), "msg": _message(error, secrets)} for error in found
    ]
    filled = {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, dict) and "default" in prop
    }
    filled.update(data)
    return filled, errors


def plugin_view(metadata: PluginMetadata, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The config as the plugin sees it: hub keys removed, schema defaults filled in."""
    try:
        return validate(metadata, stored).plugin
    except ConfigError:
        return {k: v for k, v in stored.items() if k not in RESERVED_KEYS}


def _unstorable(config: Mapping[str, Any]) -> str | None:
    """Why ``config`` cannot be stored the same on SQLite and PostgreSQL, or None."""
    try:
        text = json.dumps(config, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except ValueError as exc:
        # NaN/Infinity (json) or a lone surrogate (UnicodeEncodeError is a ValueError).
        reason = "numbers must be finite" if "JSON compliant" in str(exc) else "text must be UTF-8"
        return f"{reason}: {exc}"
    except TypeError as exc:
        return f"values must be JSON: {exc}"
    if _has_nul(config):
        return "text must not contain NUL characters"
    return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


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
    problem = _unstorable(stored)
    if problem:
        raise ConfigError("config cannot be stored", [{"loc": [], "msg": problem}])
    if previous:
        for name in secret_fields(metadata):
            if stored.get(name) == MASK and name in previous:
                stored[name] = previous[name]
    errors: list[dict[str, Any]] = []
    interval, retention = _hub_keys(stored, errors)
    targets = _targets(metadata, stored, errors)
    references = _references(metadata, stored, errors)
    data = {k: v for k, v in stored.items() if k not in RESERVED_KEYS}
    # The schema checks a placeholder; the secret itself is checked once resolved.
    data.update({key: f"{CREDENTIAL_REF}:{name}" for key, name in references.items()})
    schema = metadata.config_schema
    schema_errors: list[dict[str, Any]]
    if schema is None:
        plugin_config, schema_errors = data, []
    elif isinstance(schema, dict):
        plugin_config, schema_errors = _validate_json_schema(
            metadata.id, schema, data, secret_fields(metadata)
        )
    else:
        plugin_config, schema_errors = _validate_model(schema, data)
    errors.extend(_without_secrets(schema_errors, data, secret_fields(metadata)))
    if errors:
        raise ConfigError(f"invalid config for plugin {metadata.id!r}", errors)
    return ValidatedConfig(stored, plugin_config, interval, retention, targets, references)


async def validate_foreign(
    metadata: PluginMetadata,
    raw: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None = None,
    timeout: float,
) -> ValidatedConfig:
    """:func:`validate` for a schema from outside the hub: off the event loop,
    ``ConfigError`` when it takes longer than ``timeout`` seconds."""
    try:
        return await run_bounded(validate, metadata, raw, previous=previous, timeout=timeout)
    except TimeoutError:
        raise ConfigError(
            f"validating the config of plugin {metadata.id!r} took longer than {timeout:g}s",
            [{"loc": [], "msg": "the plugin's config schema is too slow to check"}],
        ) from None


async def plugin_view_foreign(
    metadata: PluginMetadata, stored: Mapping[str, Any], *, timeout: float
) -> dict[str, Any]:
    """:func:`plugin_view` for a schema from outside the hub (see :func:`validate_foreign`)."""
    try:
        return (await validate_foreign(metadata, stored, timeout=timeout)).plugin
    except ConfigError:
        return {k: v for k, v in stored.items() if k not in RESERVED_KEYS}


async def check_off_loop(
    parse: Callable[[dict[str, Any]], PluginMetadata], document: dict[str, Any], *, timeout: float
) -> PluginMetadata:
    """``parse(document)`` (metadata parsing and :func:`check_schema`) off the event
    loop; ``MetadataError`` when it takes longer than ``timeout`` seconds."""
    try:
        return await run_bounded(parse, document, timeout=timeout)
    except TimeoutError:
        raise MetadataError(
            f"checking the plugin's metadata took longer than {timeout:g}s"
        ) from None
