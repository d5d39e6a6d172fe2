"""The rules in force for a plugin, compiled once into cheap evaluators.

A plugin's rules are its metadata's default rules (minus the ones switched
off, with an override's changes applied) plus the rules users added. Each is
compiled into a :class:`CompiledRule` that turns one document into
:class:`Reading` s -- one per item -- without touching the database.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from unity_sdk import (
    AlertKind,
    AlertRule,
    MetricField,
    PluginMetadata,
    convert_unit,
    iter_metric_values,
    rate_scale,
    rule_problems,
)

__all__ = [
    "EXTERNAL_RULES",
    "CompiledRule",
    "EffectiveRule",
    "Reading",
    "RuleError",
    "compile_rule",
    "describe",
    "effective_rules",
    "fingerprint",
    "render_summary",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# Fields of a default rule an override may change.
OVERRIDABLE = ("severity", "threshold", "clear", "for_seconds", "intervals", "labels", "summary")


class RuleError(ValueError):
    """A rule that does not fit the plugin: ``problems`` lists ``(field, why)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {why}" for f, why in problems))
        self.problems = problems


def fingerprint(plugin_id: str, rule_id: str, host: str, item: str) -> str:
    """The stable id of one alert instance."""
    key = "\0".join((plugin_id, rule_id, host, item)).encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def render_summary(rule: AlertRule, plugin_id: str, **values: Any) -> str:
    """The rule's summary template with the instance's values filled in."""
    template = rule.summary or _default_summary(rule)
    fields = {"plugin": plugin_id, "rule": rule.title, "metric": _path(rule.metric, values)}
    fields |= {"host": "", "item": "", "value": "", "unit": "", "threshold": "", "state": ""}
    for key, value in values.items():
        fields[key] = _fmt(value) if isinstance(value, float) or value is None else str(value)
    # An empty placeholder (no item, no host) leaves no double space behind.
    return " ".join(template.format(**fields).split())


def _path(metric: str | None, values: dict[str, Any]) -> str:
    """The metric's path with the item filled in: ``disks.*.percent`` -> ``disks.sda.percent``."""
    parts = iter(str(values.get("item") or "").split("/"))
    return ".".join(next(parts, "*") if p == "*" else p for p in (metric or "").split("."))


def _default_summary(rule: AlertRule) -> str:
    if rule.kind is AlertKind.NO_DATA:
        return "{plugin} on {host}: no data for {value} s"
    if rule.kind in (AlertKind.STATE, AlertKind.HEALTH):
        return "{plugin} is {state}"
    return "{plugin} on {host}: {metric} {value}{unit} (limit {threshold}{unit})"


def describe(rule: AlertRule, metric_unit: str = "") -> str:
    """The rule's condition in a few words, for tables and lists."""
    unit = rule.unit or ("" if metric_unit in ("bool", "count") else metric_unit)
    if rule.kind is AlertKind.NO_DATA:
        return f"no data for {rule.intervals} intervals"
    if rule.kind in (AlertKind.STATE, AlertKind.HEALTH):
        return f"{rule.kind.value} is {' or '.join(rule.watched_states)}"
    space = "" if unit in ("", "%", "°C") else " "
    subject = f"rate of {rule.metric}" if rule.kind is AlertKind.RATE else f"{rule.metric}"
    if rule.threshold_metric is not None:
        text = f"{subject} {rule.op} {rule.threshold_metric}"
    else:
        text = f"{subject} {rule.op} {rule.threshold:g}{space}{unit}"
    if rule.clear is not None:
        text += f", clears past {rule.clear:g}{space}{unit}"
    return text


@dataclass(frozen=True)
class Reading:
    """One item's value in one document, and the limits it is held against."""

    item: str
    keys: tuple[str, ...]
    value: float
    threshold: float
    clear: float


@dataclass
class CompiledRule:
    """A rule of one plugin, ready to evaluate documents."""

    plugin_id: str
    rule: AlertRule
    default: bool
    unit: str = ""  # the unit values and thresholds are shown in
    compare: Callable[[float, float], bool] = operator.gt
    metric: MetricField | None = None
    limit_field: MetricField | None = None
    threshold: float | None = None  # in the metric's unit (threshold rules) or the rule's unit
    clear: float | None = None
    scale: float = 1.0  # rate rules: per-second rate -> rule's unit
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.rule.id

    def readings(self, document: Mapping[str, Any]) -> Iterator[Reading]:
        """Every numeric value of the rule's metric in ``document``, by item."""
        assert self.metric is not None
        limits: dict[tuple[str, ...], float] = {}
        if self.limit_field is not None:
            depth = self.limit_field.name.count("*")
            for keys, raw in iter_metric_values(self.limit_field, document):
                number = _number(raw)
                if number is not None:
                    limits[keys[:depth]] = number
        for keys, raw in iter_metric_values(self.metric, document):
            value = _number(raw)
            if value is None:
                continue
            if self.limit_field is not None:
                found = limits.get(keys[: self.limit_field.name.count("*")])
                if found is None:
                    continue
                threshold = clear = found
            else:
                assert self.threshold is not None
                assert self.clear is not None
                threshold, clear = self.threshold, self.clear
            yield Reading("/".join(keys), keys, value, threshold, clear)

    def holds(self, value: float, threshold: float, clear: float, active: bool) -> bool:
        """Whether the condition holds; an active alert is held against ``clear``."""
        return self.compare(value, clear if active else threshold)


def compile_rule(
    plugin_id: str, rule: AlertRule, metrics: Sequence[MetricField], *, default: bool = False
) -> CompiledRule:
    """Check ``rule`` against the plugin's metrics and compile it (``RuleError`` if unfit)."""
    problems = rule_problems(rule, metrics)
    if problems:
        raise RuleError(problems)
    compiled = CompiledRule(plugin_id, rule, default, compare=_OPS[rule.op])
    compiled.labels = {**rule.labels, "plugin": plugin_id, "severity": rule.severity.value}
    if rule.kind not in (AlertKind.THRESHOLD, AlertKind.RATE):
        return compiled
    declared = {m.name: m for m in metrics}
    compiled.metric = declared[rule.metric or ""]
    if rule.threshold_metric is not None:
        compiled.limit_field = declared[rule.threshold_metric]
        compiled.unit = compiled.metric.unit
        return compiled
    assert rule.threshold is not None
    clear = rule.threshold if rule.clear is None else rule.clear
    if rule.kind is AlertKind.RATE:
        compiled.scale = rate_scale(rule.unit, compiled.metric.unit) or 1.0
        compiled.unit = rule.unit or f"{compiled.metric.unit}/s".lstrip("/")
        compiled.threshold, compiled.clear = rule.threshold, clear
        return compiled
    unit = rule.unit if rule.unit is not None else compiled.metric.unit
    compiled.unit = compiled.metric.unit
    compiled.threshold = convert_unit(rule.threshold, unit, compiled.metric.unit)
    compiled.clear = convert_unit(clear, unit, compiled.metric.unit)
    return compiled


# The hub's own default rules for every external plugin (an agent on another host).
EXTERNAL_RULES = [
    AlertRule(
        id="agent-stale",
        kind=AlertKind.NO_DATA,
        intervals=3,
        summary="{plugin} on {host} stopped reporting: no data for {value} s",
    )
]


@dataclass(frozen=True)
class EffectiveRule:
    """A rule as it is in force for a plugin, with where it came from."""

    rule: AlertRule
    source: str  # "default" or "user"
    enabled: bool = True
    overridden: bool = False


def apply_override(rule: AlertRule, changes: Mapping[str, Any]) -> AlertRule:
    """``rule`` with an override's changes (``RuleError`` naming a bad field)."""
    unknown = sorted(set(changes) - set(OVERRIDABLE))
    if unknown:
        raise RuleError([(name, "cannot be overridden") for name in unknown])
    try:
        return AlertRule.model_validate(rule.model_dump() | dict(changes))
    except ValidationError as exc:
        raise RuleError(
            [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None


def effective_rules(
    metadata: PluginMetadata,
    overrides: Mapping[str, tuple[bool, Mapping[str, Any]]],
    user_rules: Sequence[AlertRule],
    *,
    external: bool = False,
) -> list[EffectiveRule]:
    """The plugin's default rules with overrides applied, then the users' rules
    (an override only switches a user's rule off: users edit their own rules)."""
    found: list[EffectiveRule] = []
    defaults = [*metadata.alert_rules, *(EXTERNAL_RULES if external else ())]
    for rule in defaults:
        enabled, changes = overrides.get(rule.id, (True, {}))
        changed = apply_override(rule, changes) if changes else rule
        found.append(EffectiveRule(changed, "default", enabled, rule.id in overrides))
    for rule in user_rules:
        enabled, _ = overrides.get(rule.id, (True, {}))
        found.append(EffectiveRule(rule, "user", enabled, rule.id in overrides))
    return found
