"""The config rules: what a stored plugin config must satisfy, and what the plugin gets.

The hub, the SDK's ``FakeHub``, ``collect_once`` and the author tooling all
call :func:`validate_config`, so a config one of them accepts the others
accept too.

A config is a JSON object. Three keys belong to the hub and are checked here
rather than by the plugin's schema (:data:`HUB_KEYS`): ``interval`` (seconds
between runs, :data:`INTERVAL_KEY`), ``retention_days`` (:data:`RETENTION_KEY`)
and, for plugins that collect remotely (``supports_remote``), ``targets``: a
list of inventory server names (``"local"`` is the hub itself). A plugin's
schema may not declare them (:data:`RESERVED_KEYS`).

Everything else must satisfy the plugin's ``config_schema``: a pydantic model
or a self-contained JSON Schema (:mod:`unity_sdk._schemas`). With a model the
plugin receives the validated model instance as ``self.config``; with a JSON
Schema (or none) a dict with the schema's defaults filled in.

Fields the schema marks secret (pydantic ``SecretStr``: ``writeOnly`` or
``format: password``) read back as :data:`MASK`, and writing ``MASK`` keeps
the stored value. A secret field may instead hold a reference to the hub's
credentials store, ``{"$credential": "<name>"}``; the plugin sees a
placeholder there until the hub resolves it right before a run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from unity_sdk._schemas import self_contained
from unity_sdk.errors import ConfigError, error_details
from unity_sdk.metadata import Isolation, PluginMetadata

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "CREDENTIAL_REF",
    "HUB_KEYS",
    "INTERVAL_KEY",
    "LOCAL_TARGET",
    "MASK",
    "RESERVED_KEYS",
    "RETENTION_KEY",
    "TARGETS_KEY",
    "HubKey",
    "ValidatedConfig",
    "credential_reference",
    "mask_secrets",
    "plugin_view",
    "secret_fields",
    "validate_config",
]

MASK = "********"
CREDENTIAL_REF = "$credential"
LOCAL_TARGET = "local"
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class HubKey:
    """A number the hub reads from every plugin's config, with its bounds."""

    name: str
    label: str
    unit: str
    minimum: int
    maximum: int
    whole: bool
    description: str

    @property
    def rule(self) -> str:
        """What a value must be, as an error message says it."""
        kind = "a whole number" if self.whole else "a number"
        return f"must be {kind} of {self.unit} from {self.minimum} to {self.maximum}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused, or None when it is within the bounds."""
        kinds = int if self.whole else int | float
        if (
            isinstance(value, bool)
            or not isinstance(value, kinds)
            or not self.minimum <= value <= self.maximum
        ):
            return self.rule
        return None


INTERVAL_KEY = HubKey(
    "interval", "Interval", "seconds", 1, 86400, False, "Seconds between scheduled runs"
)
RETENTION_KEY = HubKey(
    "retention_days", "Retention", "days", 1, 3650, True, "Days of metrics and run history kept"
)
TARGETS_KEY = "targets"
HUB_KEYS = (INTERVAL_KEY, RETENTION_KEY)
RESERVED_KEYS = frozenset({INTERVAL_KEY.name, RETENTION_KEY.name, TARGETS_KEY})


@dataclass(frozen=True)
class ValidatedConfig:
    """A config that passed validation.

    ``stored`` is what the hub keeps (as given, secrets included); ``plugin``
    is what the plugin receives as ``self.config``: an instance of its config
    model, or a dict with the schema's defaults filled in (hub keys removed;
    a referenced credential stands there as a placeholder until the hub
    resolves it). ``references`` maps secret fields to credential names.
    """

    stored: dict[str, Any]
    plugin: BaseModel | dict[str, Any]
    interval: float | None
    retention_days: int | None
    targets: tuple[str, ...] = ()
    references: dict[str, str] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, Any]:
        """``plugin`` as a dict (a model instance dumped)."""
        return self.plugin.model_dump() if isinstance(self.plugin, BaseModel) else self.plugin


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
    targets = raw.get(TARGETS_KEY)
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
        problem = f"must be a list of distinct server names ({LOCAL_TARGET!r} is the hub)"
    elif metadata.isolation is Isolation.PROCESS and set(targets) - {LOCAL_TARGET}:
        problem = "a process-isolated plugin can only collect locally"
    if problem:
        errors.append({"loc": [TARGETS_KEY], "msg": problem})
        return ()
    return tuple(targets)


def _hub_numbers(
    raw: Mapping[str, Any], errors: list[dict[str, Any]]
) -> tuple[float | None, int | None]:
    values: dict[str, Any] = {}
    for key in HUB_KEYS:
        value = raw.get(key.name)
        problem = None if value is None else key.problem(value)
        if problem:
            errors.append({"loc": [key.name], "msg": problem})
            value = None
        values[key.name] = value
    interval, retention = values[INTERVAL_KEY.name], values[RETENTION_KEY.name]
    return (float(interval) if interval is not None else None), retention


def _validate_model(
    model: type[BaseModel], data: dict[str, Any]
) -> tuple[BaseModel | dict[str, Any], list[dict[str, Any]]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return {}, error_details(exc)


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
    # Imported here: only plugins that declare a JSON Schema (not a model) need it.
    import jsonschema
    from referencing.exceptions import Unresolvable

    validator = jsonschema.Draft202012Validator(schema, registry=self_contained())
    try:
        found = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    except Unresolvable as exc:
        # Stored before its references were checked, or broken since: the
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


def validate_config(
    metadata: PluginMetadata,
    raw: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None = None,
) -> ValidatedConfig:
    """Validate ``raw`` for the plugin; ``ConfigError`` lists every problem.

    ``previous`` is the stored config: secret fields sent back as ``MASK``
    keep their stored value. Error messages never quote a secret value.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("config must be a JSON object", [{"loc": [], "msg": "not an object"}])
    stored = dict(raw)
    problem = _unstorable(stored)
    if problem:
        raise ConfigError("config cannot be stored", [{"loc": [], "msg": problem}])
    secrets = secret_fields(metadata)
    if previous:
        for name in secrets:
            if stored.get(name) == MASK and name in previous:
                stored[name] = previous[name]
    errors: list[dict[str, Any]] = []
    interval, retention = _hub_numbers(stored, errors)
    targets = _targets(metadata, stored, errors)
    references = _references(metadata, stored, errors)
    data = {k: v for k, v in stored.items() if k not in RESERVED_KEYS}
    # The schema checks a placeholder; the secret itself is checked once resolved.
    data.update({key: f"{CREDENTIAL_REF}:{name}" for key, name in references.items()})
    schema = metadata.config_schema
    plugin: BaseModel | dict[str, Any]
    schema_errors: list[dict[str, Any]]
    if schema is None:
        plugin, schema_errors = data, []
    elif isinstance(schema, dict):
        plugin, schema_errors = _validate_json_schema(metadata.id, schema, data, secrets)
    else:
        plugin, schema_errors = _validate_model(schema, data)
    errors.extend(_without_secrets(schema_errors, data, secrets))
    if errors:
        raise ConfigError(f"invalid config for plugin {metadata.id!r}", errors)
    return ValidatedConfig(stored, plugin, interval, retention, targets, references)


def plugin_view(metadata: PluginMetadata, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The config as the plugin sees it, as a dict: hub keys removed, defaults
    filled in (a config that does not validate: as stored, hub keys removed)."""
    try:
        return validate_config(metadata, stored).values
    except ConfigError:
        return {k: v for k, v in stored.items() if k not in RESERVED_KEYS}
