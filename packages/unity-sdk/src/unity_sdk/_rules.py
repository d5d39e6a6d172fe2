"""The rulebook: what the hub accepts from a plugin, in one place.

The hub's loader, its external-plugin routes, the SDK's ``FakeHub``,
``check_plugin`` and ``unity plugin check`` all call these functions, so a
plugin passes the author tooling exactly when the hub takes it:

- :func:`check_plugin_class`: an in-hub plugin class (subclass of
  ``PluginBase``, every hook async, ``discover`` a plain classmethod, metadata
  valid, ``PluginBase[Model]`` matching ``config_schema``), then
  :func:`check_metadata`.
- :func:`check_metadata`: a usable, self-contained config schema that
  declares none of the hub's keys, and no two metrics sharing a Prometheus
  name. :func:`parse_metadata` reads an external plugin's metadata JSON and
  checks it the same way.
- :func:`unity_sdk._config.validate_config`: a config (the hub's keys and
  their bounds, the plugin's schema, secrets, credential references).
- :func:`accept_batch`: a metric batch of an external plugin. At most
  ``MAX_BATCH_SAMPLES`` samples (413); every sample well-formed, dated at
  most ``max_future_skew`` ahead, every number storable, and every declared
  gauge or counter it holds a number (422 naming the sample and the field;
  nothing of the batch is stored). Values no metric declares are accepted.
  :func:`accept_batch_json` applies the same rules to the raw body in one
  pass (the answers are those of ``accept_batch`` on the parsed body).

Errors carry one ``{"loc", "msg"}`` per problem, the details of the hub's 422.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from unity_sdk._config import RESERVED_KEYS
from unity_sdk._metrics import document_checker
from unity_sdk._numbers import json_numbers_storable
from unity_sdk._prometheus import prometheus_collisions
from unity_sdk._schemas import reference_problems
from unity_sdk._wire import (
    DEFAULT_MAX_FUTURE_SKEW,
    MAX_BATCH_SAMPLES,
    NUMBERS_CHECKED,
    MetricBatch,
    batch_problems,
)
from unity_sdk.errors import BatchRefusedError, MetadataError, error_details
from unity_sdk.metadata import PluginMetadata
from unity_sdk.plugin import PluginBase

__all__ = [
    "accept_batch",
    "accept_batch_json",
    "check_metadata",
    "check_plugin_class",
    "parse_metadata",
]

# The hooks the hub awaits: each must be an ``async def``.
_HOOKS = (
    "collect_data",
    "health_check",
    "on_enable",
    "on_disable",
    "on_error",
    "on_config_change",
)


def _check_json_schema(schema: dict[str, Any]) -> None:
    # Imported here: plugins with a config model (every built-in) never need jsonschema.
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(str(exc)) from exc


def _schema_problems(metadata: PluginMetadata) -> list[str]:
    schema = metadata.config_schema
    name = f"config schema of {metadata.id!r}"
    try:
        if isinstance(schema, dict):
            _check_json_schema(schema)
        elif schema is not None:
            # Generated once per model class: the hub asks again when it registers the plugin.
            metadata.config_json_schema()
    except (TypeError, ValueError) as exc:
        return [f"{name} is invalid: {exc}"]
    except RecursionError:
        return [f"{name} is nested too deeply"]
    problems = []
    if isinstance(schema, dict):
        references = reference_problems(schema)
        if references:
            problems.append(
                f"{name} must be self-contained (references start with '#' and resolve "
                f"within it): {'; '.join(references[:10])}"
            )
    clashes = sorted(RESERVED_KEYS & set(metadata.config_json_schema().get("properties", {})))
    if clashes:
        problems.append(
            f"{name} declares {', '.join(clashes)}: those keys belong to the hub "
            "(rename the plugin's field)"
        )
    return problems


def check_metadata(metadata: PluginMetadata, *loc: str | int) -> None:
    """Raise ``MetadataError`` listing every problem the hub refuses ``metadata`` for.

    ``loc`` goes before each problem's location (``"metadata"`` for a request body).
    """
    found = [("config_schema", p) for p in _schema_problems(metadata)]
    found += [("metrics", p) for p in prometheus_collisions(metadata)]
    if found:
        errors: list[dict[str, Any]] = [{"loc": [*loc, key], "msg": p} for key, p in found]
        problems = "; ".join(p for _, p in found)
        raise MetadataError(f"metadata of plugin {metadata.id!r} is not valid: {problems}", errors)


def parse_metadata(document: Any) -> PluginMetadata:
    """An external plugin's metadata from its JSON form, checked like an in-hub
    plugin's; ``MetadataError`` locates each problem under ``metadata``."""
    try:
        metadata = PluginMetadata.model_validate(document)
    except ValidationError as exc:
        errors = error_details(exc, "metadata")
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:])}: {e['msg']}" for e in errors
        )
        raise MetadataError(f"plugin metadata is not valid: {problems}", errors) from None
    check_metadata(metadata, "metadata")
    return metadata


def _declared_model(cls: type[PluginBase[Any]], metadata: PluginMetadata) -> None:
    model = cls.config_model
    schema = metadata.config_schema
    if model is None or schema is model:
        return
    declared = schema.__name__ if isinstance(schema, type) else type(schema).__name__
    raise MetadataError(
        f"{cls.__name__} subclasses PluginBase[{model.__name__}] but its config_schema is "
        f"{declared}: they must name the same model",
        [{"loc": ["config_schema"], "msg": f"must be {model.__name__}"}],
    )


def check_plugin_class(obj: object, *, expected_id: str | None = None) -> PluginMetadata:
    """Check that ``obj`` is a plugin class the hub can run; return its metadata.

    Calls ``obj().get_metadata()``. ``expected_id`` is the entry-point name,
    which must equal the plugin id. ``MetadataError`` names the problem.
    """
    if not (inspect.isclass(obj) and issubclass(obj, PluginBase)):
        raise MetadataError(f"{obj!r} is not a subclass of unity_sdk.PluginBase")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise MetadataError(f"{obj.__name__} does not implement: {missing}")
    for name in _HOOKS:
        if not inspect.iscoroutinefunction(getattr(obj, name)):
            raise MetadataError(f"{obj.__name__}.{name} must be an async method")
    discover = inspect.getattr_static(obj, "discover")
    if not isinstance(discover, classmethod) or inspect.iscoroutinefunction(discover.__func__):
        raise MetadataError(f"{obj.__name__}.discover must be a plain (not async) classmethod")
    metadata = obj().get_metadata()
    if not isinstance(metadata, PluginMetadata):
        raise MetadataError(f"{obj.__name__}.get_metadata() must return PluginMetadata")
    if expected_id is not None and metadata.id != expected_id:
        raise MetadataError(
            f"entry point {expected_id!r} loads plugin id {metadata.id!r}; they must be equal"
        )
    _declared_model(obj, metadata)
    check_metadata(metadata)
    return metadata


def accept_batch(
    metadata: PluginMetadata,
    raw: Any,
    *,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> MetricBatch:
    """The batch in ``raw`` (parsed JSON) if the hub stores it, else ``BatchRefusedError``.

    See the module docstring for the rules; ``raw`` should come from a JSON
    parser that keeps huge numbers as they are (the hub's and ``json.loads``).
    """
    samples = raw.get("samples") if isinstance(raw, Mapping) else None
    if isinstance(samples, list) and len(samples) > MAX_BATCH_SAMPLES:
        raise BatchRefusedError(413, f"a batch holds at most {MAX_BATCH_SAMPLES} samples")
    try:
        batch = MetricBatch.model_validate(raw, context={"max_future_skew": max_future_skew})
    except ValidationError as exc:
        raise BatchRefusedError(422, *batch_problems(exc)) from None
    _check_documents(metadata, batch)
    return batch


def _check_documents(metadata: PluginMetadata, batch: MetricBatch) -> None:
    # The wire model refused every unstorable number already.
    check = document_checker(metadata, require_all=False, numbers_checked=True)
    errors = [
        {"loc": ["samples", index, "data"], "msg": problem}
        for index, sample in enumerate(batch.samples)
        for problem in check(sample.data)
    ]
    if errors:
        first = errors[0]["loc"][1]
        raise BatchRefusedError(422, f"sample {first} is invalid; nothing was stored", errors)


def accept_batch_json(
    metadata: PluginMetadata,
    body: bytes | str,
    *,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    parse: Callable[[bytes | str], Any] = json.loads,
) -> MetricBatch:
    """:func:`accept_batch` of the JSON ``body``, validated as it is parsed.

    A body the one pass refuses is parsed with ``parse`` (which raises its
    own error for text that is not JSON) and judged by :func:`accept_batch`,
    so every refusal is exactly its answer; only accepted batches take the
    fast path. When a scan of the raw bytes proves every number storable
    (:func:`unity_sdk._numbers.json_numbers_storable`) the samples skip
    walking their data; a body the scan cannot vouch for is walked as usual.
    """
    context: dict[str, Any] = {"max_future_skew": max_future_skew}
    if isinstance(body, bytes) and json_numbers_storable(body):
        context[NUMBERS_CHECKED] = True
    try:
        batch = MetricBatch.model_validate_json(body, context=context)
    except ValidationError:
        return accept_batch(metadata, parse(body), max_future_skew=max_future_skew)
    if len(batch.samples) > MAX_BATCH_SAMPLES:
        raise BatchRefusedError(413, f"a batch holds at most {MAX_BATCH_SAMPLES} samples")
    _check_documents(metadata, batch)
    return batch
