"""The hub compiles the SDK's alert rules: units converted, per-item readings."""

from __future__ import annotations

from unity.alerts.rules import compile_rule, describe
from unity_sdk import AlertRule, MetricField, MetricKind, rule_problems

METRICS = [
    MetricField(name="uptime", unit="s"),
    MetricField(name="disks.*.percent", unit="%"),
    MetricField(name="disks.*.bytes", unit="bytes"),
    MetricField(name="sensors.*.celsius", unit="°C"),
    MetricField(name="sensors.*.high", unit="°C"),
    MetricField(name="model", kind=MetricKind.INFO),
    MetricField(name="errors", unit="count", kind=MetricKind.COUNTER),
]


def test_the_hub_compiles_a_threshold_in_another_unit_into_the_metrics_unit() -> None:
    rule = AlertRule(id="fresh-boot", metric="uptime", op="<", threshold=10, clear=15, unit="min")
    assert rule_problems(rule, METRICS) == []
    compiled = compile_rule("probe", rule, METRICS)
    assert (compiled.threshold, compiled.clear, compiled.unit) == (600, 900, "s")
    readings = list(compiled.readings({"uptime": 300}))
    assert compiled.holds(readings[0].value, 600, 900, active=False)
    assert compiled.holds(800, 600, 900, active=True)
    assert not compiled.holds(800, 600, 900, active=False)
    assert describe(rule, "s") == "uptime < 10 min, clears past 15 min"


def test_per_item_readings_and_a_limit_from_a_sibling_metric() -> None:
    rule = AlertRule(
        id="hot", metric="sensors.*.celsius", op=">=", threshold_metric="sensors.*.high"
    )
    compiled = compile_rule("probe", rule, METRICS)
    doc = {"sensors": {"cpu": {"celsius": 80, "high": 75}, "nvme": {"celsius": 40}}}
    readings = list(compiled.readings(doc))
    assert [(r.item, r.value, r.threshold) for r in readings] == [("cpu", 80, 75)]
