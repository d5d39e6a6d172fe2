"""Bounds on what a plugin may declare or report: metric count, health details."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from unity_sdk import (
    MAX_HEALTH_DETAILS_BYTES,
    ExternalPluginBase,
    HealthReport,
    HealthState,
    HealthStatus,
    PluginMetadata,
)
from unity_sdk.metadata import MAX_METRICS, duplicate_names
from unity_sdk.testing import FakeHub


def _metadata(names: list[str]) -> PluginMetadata:
    return PluginMetadata.model_validate(
        {"id": "many", "name": "Many", "version": "1.0.0", "metrics": [{"name": n} for n in names]}
    )


def test_twenty_thousand_names_are_checked_for_duplicates() -> None:
    names = [f"m{i}" for i in range(20_000)] + ["m7", "m19999", "m7"]
    assert duplicate_names(names) == ["m19999", "m7"]
    assert duplicate_names(f"m{i}" for i in range(20_000)) == []


def test_a_plugin_declares_at_most_max_metrics() -> None:
    assert len(_metadata([f"m{i}" for i in range(MAX_METRICS)]).metrics) == MAX_METRICS
    with pytest.raises(ValidationError, match=f"at most {MAX_METRICS}"):
        _metadata([f"m{i}" for i in range(20_000)])


def test_duplicates_are_named_once_each() -> None:
    with pytest.raises(ValidationError, match="metrics declared twice: a, b \\["):
        _metadata(["a", "b", "c", "b", "a", "a"])


def test_health_details_are_bounded() -> None:
    fits = {"log": "x" * (MAX_HEALTH_DETAILS_BYTES - 100)}
    assert HealthReport(status=HealthState.HEALTHY, details=fits).details == fits
    with pytest.raises(ValidationError, match=f"at most {MAX_HEALTH_DETAILS_BYTES} bytes"):
        HealthReport(status=HealthState.HEALTHY, details={"log": "x" * MAX_HEALTH_DETAILS_BYTES})


class Chatty(ExternalPluginBase):
    """Its health check returns far more detail than a report may carry."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="chatty", name="Chatty", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {"n": 1}

    async def health_check(self) -> HealthStatus:
        return HealthStatus.healthy("fine", log="x" * (2 * MAX_HEALTH_DETAILS_BYTES))


async def test_an_external_plugin_with_oversized_details_still_reports(tmp_path: Path) -> None:
    hub = FakeHub()
    hub.set_config("chatty", {}, interval=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(
        Chatty().run(
            "http://hub.test",
            state_dir=tmp_path,
            hostname="nas",
            stop_event=stop,
            transport=hub.transport,
            enrollment_token=hub.enrollment_token,
        )
    )
    deadline = time.monotonic() + 10
    while len(hub.health("chatty")) < 2:
        assert not task.done(), task
        assert time.monotonic() < deadline, "no health reports arrived"
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    report = hub.health("chatty")[-1]
    assert report.status is HealthState.DEGRADED
    assert "details dropped" in report.message
    assert "log" not in report.details
    assert report.details["sent"] >= 1
