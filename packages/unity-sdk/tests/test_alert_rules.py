"""Alert rules in plugin metadata: the one check the SDK and the hub share."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from unity_sdk import (
    AlertRule,
    MetricField,
    MetricKind,
    PluginMetadata,
    convert_unit,
    rate_scale,
)

METRICS = [
    MetricField(name="uptime", unit="s"),
    MetricField(name="disks.*.percent", unit="%"),
    MetricField(name="disks.*.bytes", unit="bytes"),
    MetricField(name="sensors.*.celsius", unit="°C"),
    MetricField(name="sensors.*.high", unit="°C"),
    MetricField(name="model", kind=MetricKind.INFO),
    MetricField(name="errors", unit="count", kind=MetricKind.COUNTER),
]


def metadata(*rules: AlertRule) -> PluginMetadata:
    return PluginMetadata(
        id="probe", name="Probe", version="1.0.0", metrics=METRICS, alert_rules=list(rules)
    )


def test_declared_rules_are_kept_and_a_plugin_without_rules_has_none() -> None:
    rule = AlertRule(id="disk-full", metric="disks.*.percent", threshold=90, clear=85)
    assert metadata(rule).alert_rules == [rule]
    assert metadata().alert_rules == []
    dumped = metadata(rule).model_dump(mode="json")
    assert PluginMetadata.model_validate(dumped).alert_rules == [rule]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"metric": "cpu", "threshold": 1},
            "alert rule 'r': metric: the plugin declares no",
        ),
        ({"metric": "model", "threshold": 1}, "metric: metric 'model' is not numeric (info)"),
        ({"metric": "uptime", "threshold": 1, "unit": "GiB"}, "unit: 'GiB' does not convert"),
        ({"metric": "disks.*.percent", "op": "<", "threshold": 0}, "never negative: < 0 is never"),
        ({"metric": "disks.*.percent", "threshold": -5}, "never negative: > -5 is always"),
        ({"metric": "uptime", "threshold": 10, "clear": 20}, "clear (20) must not be above"),
        ({"metric": "uptime"}, "threshold: a threshold rule needs a threshold"),
        (
            {"kind": "rate", "metric": "errors", "threshold": 1, "unit": "count/week"},
            "not a rate of",
        ),
        ({"metric": "sensors.*.celsius", "threshold_metric": "uptime"}, "unit 's' is not '°C'"),
        ({"kind": "no_data", "metric": "uptime"}, "takes no metric or threshold"),
        ({"kind": "state", "states": ["on_fire"]}, "states: on_fire: not one of"),
        (
            {"metric": "uptime", "threshold": 1, "summary": "{uptime}"},
            "unknown placeholders: uptime",
        ),
    ],
)
def test_a_rule_that_cannot_work_is_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        metadata(AlertRule(id="r", **rule))


def test_rule_ids_are_unique_and_well_formed() -> None:
    rule = AlertRule(id="a", kind="no_data")
    with pytest.raises(ValidationError, match="alert rules declared twice: a"):
        metadata(rule, rule)
    with pytest.raises(ValidationError, match="id"):
        AlertRule(id="Has Spaces", kind="no_data")
    with pytest.raises(ValidationError, match="Extra inputs"):
        AlertRule.model_validate({"id": "x", "kind": "no_data", "treshold": 1})


def test_units_convert_within_their_dimension_only() -> None:
    assert convert_unit(2, "h", "s") == 7200
    assert convert_unit(1, "GiB", "bytes") == 1024**3
    assert convert_unit(14, "days", "d") == 14
    assert convert_unit(1, "s", "bytes") is None
    assert convert_unit(5, "%", "%") == 5
    assert rate_scale("count/min", "count") == 60
    assert rate_scale("/h", "count") == 3600
    assert rate_scale("MiB/s", "bytes") == pytest.approx(1 / 1024**2)
    assert rate_scale("count/fortnight", "count") is None
