"""``prometheus_advice`` (printed by ``unity author check``) agrees with promtool's lint."""

from __future__ import annotations

import pytest
from tests.support.promtool import promtool_lint

from unity_sdk import MetricField, MetricKind, prometheus_advice, prometheus_series

GAUGE, COUNTER, INFO = MetricKind.GAUGE, MetricKind.COUNTER, MetricKind.INFO


@pytest.mark.parametrize(
    ("path", "unit", "kind"),
    [
        ("queue_gauge", "count", GAUGE),
        ("wait_minutes", "count", GAUGE),
        ("x.kb_free", "", GAUGE),
        ("megabits.rx", "", GAUGE),
        ("cpu_time", "ms", COUNTER),
        ("events", "count", COUNTER),
        ("summary.lines", "", INFO),
        ("uptime_ms", "ms", GAUGE),
    ],
)
def test_advice_agrees_with_promtool(path: str, unit: str, kind: MetricKind) -> None:
    series = prometheus_series(
        "jobs", MetricField(name=path, unit=unit, kind=kind, description="d")
    )
    kind_written = "counter" if kind is COUNTER else "gauge"
    page = f"# HELP {series.name} d\n# TYPE {series.name} {kind_written}\n"
    page += f'{series.name}{{host="nas"}} 1\n'
    code, output = promtool_lint(page)
    problems = prometheus_advice(series)
    assert (code != 0) == bool(problems), (output, problems)
    assert len(output.splitlines()) == len(problems), (output, problems)
