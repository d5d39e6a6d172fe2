"""Alert rules: what a plugin (or a user) declares should raise an alert.

A plugin ships default rules in ``PluginMetadata.alert_rules``; users add
their own through the hub. Both are :class:`AlertRule` and both are checked by
:func:`rule_problems` against the plugin's declared metrics -- the SDK when
the metadata is built, the hub when a user sends a rule -- so a rule on a
metric that does not exist, with a wrong unit or an impossible threshold is
refused in one place.

Kinds:

- ``threshold``: a declared numeric metric compared with ``threshold`` (or,
  per item, with another declared metric: ``threshold_metric``, e.g. a
  sensor's own high mark). A ``*`` in the path makes one alert per item.
- ``rate``: the per-second rate of a metric (``unit`` may say ``/min`` or
  ``/h``); a decrease counts as a reset, not as a negative rate.
- ``no_data``: the plugin (or external agent) sent nothing for ``intervals``
  of its interval.
- ``state``: the plugin's state is one of ``states`` (default ``failing``).
- ``health``: what the plugin says about what it watches is one of
  ``states`` (default ``degraded`` and ``unhealthy``).

``clear`` gives hysteresis: an alert raised at ``threshold`` resolves only
once the value is back past ``clear``. ``summary`` is a template with
``{plugin}``, ``{host}``, ``{item}``, ``{value}``, ``{unit}``,
``{threshold}``, ``{metric}``, ``{state}`` and ``{rule}``.

Example::

    AlertRule(id="disk-full", metric="partitions.*.percent", threshold=90,
              clear=85, for_seconds=300, severity="critical",
              summary="{item} on {host} is {value}{unit} full (limit {threshold}{unit})")
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from unity_sdk.metadata import MetricField

__all__ = [
    "AlertKind",
    "AlertRule",
    "AlertSeverity",
    "convert_unit",
    "rate_scale",
    "rule_problems",
]

RULE_ID_PATTERN = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
TEMPLATE_FIELDS = frozenset(
    {"plugin", "host", "item", "value", "unit", "threshold", "metric", "state", "rule"}
)

# Units that convert into each other: unit -> (dimension, factor to the base unit).
_SCALES: dict[str, tuple[str, float]] = {
    "ms": ("time", 0.001),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "d": ("time", 86400.0),
    "days": ("time", 86400.0),
    "B": ("size", 1.0),
    "bytes": ("size", 1.0),
    "KiB": ("size", 1024.0),
    "MiB": ("size", 1024.0**2),
    "GiB": ("size", 1024.0**3),
    "TiB": ("size", 1024.0**4),
    "kB": ("size", 1e3),
    "MB": ("size", 1e6),
    "GB": ("size", 1e9),
    "TB": ("size", 1e12),
}
_PER = {"s": 1.0, "min": 60.0, "h": 3600.0}
# Units whose values are never negative: a limit below zero can never be crossed.
_NON_NEGATIVE = frozenset({"%", "count", "bool", "RPM", "W", "ms", "bytes", "B", "KiB", "MiB"})


class AlertKind(StrEnum):
    THRESHOLD = "threshold"
    RATE = "rate"
    NO_DATA = "no_data"
    STATE = "state"
    HEALTH = "health"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


_STATES = {
    AlertKind.STATE: ({"failing", "degraded", "unhealthy", "stale"}, ["failing"]),
    AlertKind.HEALTH: ({"degraded", "unhealthy"}, ["degraded", "unhealthy"]),
}


class AlertRule(BaseModel):
    """One alert rule of a plugin (see the module docstring for the kinds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=RULE_ID_PATTERN, max_length=64)
    name: str = Field(default="", max_length=128, description="Human name; the id when empty")
    kind: AlertKind = AlertKind.THRESHOLD
    severity: AlertSeverity = AlertSeverity.WARNING
    metric: str | None = Field(default=None, max_length=256)
    op: Comparison = ">"
    threshold: float | None = None
    threshold_metric: str | None = Field(
        default=None,
        max_length=256,
        description="Compare with this declared metric of the same item instead of a number",
    )
    clear: float | None = Field(
        default=None, description="Resolve only once the value is back past this (hysteresis)"
    )
    unit: str | None = Field(
        default=None, max_length=32, description="Unit of threshold and clear; the metric's"
    )
    for_seconds: float = Field(
        default=0, ge=0, le=7 * 86400, description="How long the condition must hold (`for`)"
    )
    intervals: int = Field(default=3, ge=1, le=1000, description="no_data: missed intervals")
    states: list[str] = Field(default_factory=list, max_length=8)
    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    summary: str = Field(default="", max_length=512)

    @property
    def title(self) -> str:
        return self.name or self.id

    @property
    def watched_states(self) -> list[str]:
        """``states``, or the kind's default states."""
        return self.states or _STATES.get(self.kind, (set(), []))[1]


def convert_unit(value: float, from_unit: str, to_unit: str) -> float | None:
    """``value`` in ``from_unit`` expressed in ``to_unit``; None when they do not convert."""
    if from_unit == to_unit:
        return value
    source, target = _SCALES.get(from_unit), _SCALES.get(to_unit)
    if source is None or target is None or source[0] != target[0]:
        return None
    return value * source[1] / target[1]


def rate_scale(rule_unit: str | None, metric_unit: str) -> float | None:
    """The factor from a per-second rate of the metric to the rule's rate unit.

    ``count/min`` on a ``count`` metric gives 60; ``None`` when the units do not fit.
    """
    if rule_unit is None:
        return 1.0
    base, _, per = rule_unit.rpartition("/")
    if per not in _PER:
        return None
    scale = convert_unit(1.0, metric_unit, base) if base else 1.0
    return None if scale is None else scale * _PER[per]


def _wildcards(path: str) -> int:
    return path.split(".").count("*")


def _metric_problems(
    rule: AlertRule, declared: dict[str, MetricField]
) -> tuple[list[tuple[str, str]], MetricField | None]:
    if rule.metric is None:
        return [("metric", f"a {rule.kind.value} rule needs a metric")], None
    field = declared.get(rule.metric)
    if field is None:
        return [("metric", f"the plugin declares no metric {rule.metric!r}")], None
    if not field.numeric:
        return [("metric", f"metric {rule.metric!r} is not numeric ({field.kind.value})")], None
    return [], field


def _threshold_problems(rule: AlertRule, field: MetricField) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    unit = rule.unit if rule.unit is not None else field.unit
    if rule.kind is AlertKind.RATE:
        if rate_scale(rule.unit, field.unit) is None:
            problems.append(("unit", f"{unit!r} is not a rate of {field.unit or 'the metric'!r}"))
    elif convert_unit(1.0, unit, field.unit) is None:
        problems.append(("unit", f"{unit!r} does not convert to the metric's {field.unit!r}"))
    for name in ("threshold", "clear"):
        value = getattr(rule, name)
        if value is not None and not math.isfinite(value):
            problems.append((name, f"{name} must be a finite number"))
    if problems or rule.threshold is None:
        return problems
    limit, clear = rule.threshold, rule.clear
    if rule.kind is AlertKind.THRESHOLD and field.unit in _NON_NEGATIVE:
        never = (limit < 0 and rule.op in ("<", "<=", "==")) or (limit <= 0 and rule.op == "<")
        always = limit < 0 and rule.op in (">", ">=", "!=")
        if never or always:
            problems.append(
                (
                    "threshold",
                    f"{field.unit!r} is never negative: {rule.op} {limit:g} is "
                    + ("never" if never else "always")
                    + " true",
                )
            )
        if field.unit == "bool" and limit not in (0, 1) and rule.op in ("==", "!="):
            problems.append(("threshold", "a bool metric is 0 or 1"))
    if clear is not None:
        if rule.op in ("==", "!="):
            problems.append(("clear", f"clear has no meaning with {rule.op}"))
        elif rule.op in (">", ">=") and clear > limit:
            problems.append(("clear", f"clear ({clear:g}) must not be above threshold ({limit:g})"))
        elif rule.op in ("<", "<=") and clear < limit:
            problems.append(("clear", f"clear ({clear:g}) must not be below threshold ({limit:g})"))
    return problems


def _value_problems(rule: AlertRule, declared: dict[str, MetricField]) -> list[tuple[str, str]]:
    problems, field = _metric_problems(rule, declared)
    if field is None:
        return problems
    assert rule.metric is not None
    if rule.threshold_metric is not None:
        if rule.kind is not AlertKind.THRESHOLD:
            return [("threshold_metric", "only a threshold rule compares with another metric")]
        other = declared.get(rule.threshold_metric)
        if other is None or not other.numeric:
            return [("threshold_metric", f"no numeric metric {rule.threshold_metric!r}")]
        if _wildcards(other.name) > _wildcards(rule.metric):
            return [("threshold_metric", "it has more '*' segments than the metric")]
        if convert_unit(1.0, other.unit, field.unit) is None:
            return [("threshold_metric", f"its unit {other.unit!r} is not {field.unit!r}")]
        if rule.threshold is not None:
            return [("threshold", "give threshold or threshold_metric, not both")]
        return []
    if rule.threshold is None:
        return [("threshold", f"a {rule.kind.value} rule needs a threshold")]
    return _threshold_problems(rule, field)


def rule_problems(rule: AlertRule, metrics: Sequence[MetricField]) -> list[tuple[str, str]]:
    """What is wrong with ``rule`` for a plugin declaring ``metrics``: ``(field, why)``.

    Empty when the rule is fine.
    """
    problems: list[tuple[str, str]] = []
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(rule.summary) if name}
    except ValueError as exc:
        problems.append(("summary", f"not a valid template: {exc}"))
    else:
        unknown = sorted(names - TEMPLATE_FIELDS)
        if unknown:
            problems.append(("summary", f"unknown placeholders: {', '.join(unknown)}"))
    if rule.kind in (AlertKind.THRESHOLD, AlertKind.RATE):
        problems += _value_problems(rule, {m.name: m for m in metrics})
    elif rule.metric is not None or rule.threshold is not None:
        problems.append(("metric", f"a {rule.kind.value} rule takes no metric or threshold"))
    allowed = _STATES.get(rule.kind)
    if allowed is None and rule.states:
        problems.append(("states", f"a {rule.kind.value} rule takes no states"))
    elif allowed is not None and not set(rule.states) <= allowed[0]:
        bad = ", ".join(sorted(set(rule.states) - allowed[0]))
        problems.append(("states", f"{bad}: not one of {', '.join(sorted(allowed[0]))}"))
    return problems
