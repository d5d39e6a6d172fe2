"""The models a plugin uses to describe itself: metadata, metrics, health.

Everything here is plain pydantic so the hub, the dashboard, the docs and the
author tooling read one description of each plugin.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from unity_sdk.alerts import AlertRule, rule_problems
from unity_sdk.errors import MetadataError

__all__ = [
    "MAX_METRICS",
    "HealthState",
    "HealthStatus",
    "Isolation",
    "MetricDisplay",
    "MetricField",
    "MetricKind",
    "PluginCategory",
    "PluginMetadata",
    "Requirements",
    "duplicate_names",
]

PLUGIN_ID_PATTERN = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
# The largest built-in declares about sixty; wildcards (``disks.*.percent``)
# cover per-device series, so a thousand leaves ample room and keeps every
# pass over the declared metrics cheap.
MAX_METRICS = 1000
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_METRIC_PATH = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|\*)(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|\*))*$")


def duplicate_names(names: Iterable[str]) -> list[str]:
    """The names that occur more than once, sorted; one pass over ``names``."""
    return sorted(name for name, seen in Counter(names).items() if seen > 1)


class PluginCategory(StrEnum):
    """Where a plugin sits in the catalogue."""

    SYSTEM = "system"
    NETWORK = "network"
    STORAGE = "storage"
    THERMAL = "thermal"
    CONTAINER = "container"
    DATABASE = "database"
    APPLICATION = "application"
    SECURITY = "security"
    POWER = "power"
    AI_ML = "ai_ml"
    CUSTOM = "custom"


class MetricKind(StrEnum):
    """How a declared metric behaves over time (Prometheus semantics)."""

    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"


class MetricDisplay(StrEnum):
    """How a dashboard shows a declared metric.

    ``chart``: a time series (a counter as its rate). ``fact``: a value that
    does not change from run to run (a count of CPUs, a total size, a boot
    time, a version), shown once with its latest value. ``state``: a boolean
    or a state, drawn as a timeline of its values.
    """

    CHART = "chart"
    FACT = "fact"
    STATE = "state"


class Isolation(StrEnum):
    """Where the hub runs a plugin's code.

    ``thread``: an event loop on a thread of the hub (shared with other plugins;
    one that blocks it gets a thread of its own), so blocking calls never
    stall the hub -- but it shares the hub's process: ``os._exit()``, a crash
    or a leak in the plugin takes the hub with it. ``process``: a fresh,
    memory-capped child process per run, which the hub kills on timeout -- for
    plugins that may crash, hang in C code or eat memory; a failure there
    fails only that run.
    """

    THREAD = "thread"
    PROCESS = "process"


class HealthState(StrEnum):
    """The answer of a health check."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"  # nothing to monitor here: never an error


class HealthStatus(BaseModel):
    """What ``PluginBase.health_check`` returns."""

    model_config = ConfigDict(frozen=True)

    status: HealthState = HealthState.HEALTHY
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def healthy(cls, message: str = "", **details: Any) -> HealthStatus:
        return cls(status=HealthState.HEALTHY, message=message, details=details)

    @classmethod
    def degraded(cls, message: str, **details: Any) -> HealthStatus:
        return cls(status=HealthState.DEGRADED, message=message, details=details)

    @classmethod
    def unhealthy(cls, message: str, **details: Any) -> HealthStatus:
        return cls(status=HealthState.UNHEALTHY, message=message, details=details)

    @classmethod
    def not_applicable(cls, message: str, **details: Any) -> HealthStatus:
        """Nothing to monitor on this host (no arrays, no SMART disks...)."""
        return cls(status=HealthState.NOT_APPLICABLE, message=message, details=details)


class MetricField(BaseModel):
    """One declared field of a plugin's collected document.

    ``name`` is a dotted path into the document (``cpu.percent``). A ``*``
    segment matches every key of a mapping or item of a list, so
    ``disks.*.percent`` declares one series per disk. ``display`` says how a
    dashboard shows it (see ``MetricDisplay``); left out, it follows from
    ``kind`` and ``unit`` (``shown_as``).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    unit: str = ""
    kind: MetricKind = MetricKind.GAUGE
    description: str = ""
    display: MetricDisplay | None = None

    @field_validator("name")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not _METRIC_PATH.match(value):
            raise ValueError(f"metric name {value!r} must be a dotted path of identifiers or '*'")
        return value

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    @property
    def numeric(self) -> bool:
        return self.kind is not MetricKind.INFO

    @property
    def shown_as(self) -> MetricDisplay:
        """``display`` when declared; else a fact for ``info``, a state for unit ``bool``."""
        if self.display is not None:
            return self.display
        if self.kind is MetricKind.INFO:
            return MetricDisplay.FACT
        return MetricDisplay.STATE if self.unit == "bool" else MetricDisplay.CHART


class Requirements(BaseModel):
    """What a plugin needs from the host it collects on."""

    model_config = ConfigDict(frozen=True)

    packages: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    root: bool = False


class PluginMetadata(BaseModel):
    """Everything the hub needs to know about a plugin before running it.

    ``id`` is the one name used everywhere: entry-point name, database key, URL
    segment and config key. ``config_schema`` is a pydantic model class or a
    JSON Schema document; the hub validates every config against it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    id: str = Field(pattern=PLUGIN_ID_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    version: str
    description: str = ""
    author: str = ""
    category: PluginCategory = PluginCategory.CUSTOM
    tags: list[str] = Field(default_factory=list)
    config_schema: type[BaseModel] | dict[str, Any] | None = None
    metrics: list[MetricField] = Field(default_factory=list, max_length=MAX_METRICS)
    default_interval: float = Field(default=60.0, gt=0, le=86400)
    timeout: float = Field(default=30.0, gt=0, le=3600)
    requires: Requirements = Field(default_factory=Requirements)
    supports_remote: bool = False
    isolation: Isolation = Isolation.THREAD
    alert_rules: list[AlertRule] = Field(default_factory=list, max_length=100)

    @field_validator("version")
    @classmethod
    def _check_semver(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError(f"version {value!r} is not semantic versioning (e.g. 1.2.0)")
        return value

    @field_validator("config_schema")
    @classmethod
    def _check_schema(
        cls, value: type[BaseModel] | dict[str, Any] | None
    ) -> type[BaseModel] | dict[str, Any] | None:
        if isinstance(value, dict) and value.get("type", "object") != "object":
            raise ValueError("a JSON config schema must describe an object")
        if isinstance(value, type) and not issubclass(value, BaseModel):
            raise ValueError("config_schema must be a pydantic model class or a JSON Schema")
        return value

    @model_validator(mode="after")
    def _unique_metrics(self) -> PluginMetadata:
        duplicates = duplicate_names(m.name for m in self.metrics)
        if duplicates:
            raise ValueError(f"metrics declared twice: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _valid_rules(self) -> PluginMetadata:
        duplicates = duplicate_names(r.id for r in self.alert_rules)
        if duplicates:
            raise ValueError(f"alert rules declared twice: {', '.join(duplicates)}")
        for rule in self.alert_rules:
            for field, why in rule_problems(rule, self.metrics):
                raise ValueError(f"alert rule {rule.id!r}: {field}: {why}")
        return self

    def config_json_schema(self) -> dict[str, Any]:
        """The config schema as JSON Schema (empty object schema when none)."""
        if self.config_schema is None:
            return {"type": "object", "properties": {}}
        if isinstance(self.config_schema, dict):
            return self.config_schema
        return copy.deepcopy(_model_json_schema(self.config_schema))

    def metric(self, name: str) -> MetricField:
        """The declared metric called ``name``; ``MetadataError`` if undeclared."""
        for field in self.metrics:
            if field.name == name:
                return field
        raise MetadataError(f"plugin {self.id!r} declares no metric {name!r}")


@lru_cache(maxsize=512)
def _model_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    # Generating a JSON Schema costs about a millisecond per model, and the hub
    # asks for every plugin's several times at start (registry, secret fields):
    # generated once per class, handed out as copies.
    return model.model_json_schema()
