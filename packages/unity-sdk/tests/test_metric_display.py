"""MetricField.display: how a dashboard shows a metric, declared or following from kind and unit."""

from __future__ import annotations

import pytest

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
