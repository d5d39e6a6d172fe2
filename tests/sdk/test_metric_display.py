"""MetricField.display: how a dashboard shows a metric, declared or following from kind and unit."""

from __future__ import annotations

import pytest

from unity.plugins.builtin.postgres import PostgresPlugin
from unity.plugins.builtin.system_info import SystemInfoPlugin
from unity_sdk import MetricDisplay, MetricField, MetricKind


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        (MetricField(name="cpu.percent", unit="%"), MetricDisplay.CHART),
        (MetricField(name="reads", unit="bytes", kind=MetricKind.COUNTER), MetricDisplay.CHART),
        (MetricField(name="version", kind=MetricKind.INFO), MetricDisplay.FACT),
        (MetricField(name="in_recovery", unit="bool"), MetricDisplay.STATE),
        (MetricField(name="total", unit="bytes", display=MetricDisplay.FACT), MetricDisplay.FACT),
        (
            MetricField(name="nics.*.isup", kind=MetricKind.INFO, display=MetricDisplay.STATE),
            MetricDisplay.STATE,
        ),
    ],
)
def test_display_is_declared_or_follows_from_kind_and_unit(
    field: MetricField, shown: MetricDisplay
) -> None:
    assert field.shown_as is shown


def test_metadata_stored_before_display_existed_still_reads() -> None:
    old = {"name": "memory.total", "unit": "bytes", "kind": "gauge", "description": ""}
    field = MetricField.model_validate(old)
    assert field.display is None
    assert field.shown_as is MetricDisplay.CHART
    assert MetricField.model_validate(field.model_dump()) == field


def test_builtins_declare_their_constants_and_states() -> None:
    system = {m.name: m.shown_as for m in SystemInfoPlugin().get_metadata().metrics}
    for name in ("cpu.count.*", "memory.total", "swap.total", "boot_time"):
        assert system[name] is MetricDisplay.FACT, name
    assert system["cpu.percent"] is MetricDisplay.CHART
    postgres = {m.name: m.shown_as for m in PostgresPlugin().get_metadata().metrics}
    assert postgres["version_num"] is MetricDisplay.FACT
    assert postgres["in_recovery"] is MetricDisplay.STATE
    assert postgres["reachable"] is MetricDisplay.STATE
