"""The built-ins' default rules, evaluated on documents shaped as the plugins write them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from tests.alerts.support import Clock, Recorder, run
from unity.alerts import AlertEngine
from unity_catalogue import BUILTIN_PLUGINS
from unity_sdk import PluginMetadata

BUILTIN = {m.id: m for m in (cls().get_metadata() for cls in BUILTIN_PLUGINS)}


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return []


@pytest.fixture
async def engine(app: FastAPI) -> tuple[AlertEngine, Clock, Recorder]:
    await app.state.alerts.stop()

    async def metadata(plugin_id: str) -> PluginMetadata:
        return BUILTIN[plugin_id]

    clock, recorder = Clock(), Recorder()
    made = AlertEngine(
        app.state.db, app.state.settings, metadata=metadata, notifier=recorder, clock=clock
    )
    return made, clock, recorder


def told(recorder: Recorder) -> list[tuple[str, str, str, str]]:
    return [(n.rule_id, n.severity, n.labels.get("item", ""), n.summary) for n in recorder.notices]


async def test_ups_on_battery_and_runtime_low(engine: tuple[AlertEngine, Clock, Recorder]) -> None:
    alerts, clock, recorder = engine
    ups = {"on_battery": 1, "online": 0, "low_battery": 0, "battery_charge": 64.0}
    await alerts.observe(
        run(clock, {"ups": {"apc": ups | {"battery_runtime": 420}}}, plugin_id="upsc")
    )
    assert told(recorder) == [
        ("ups-on-battery", "warning", "apc", "UPS apc on web1 is on battery"),
        (
            "ups-runtime-low",
            "critical",
            "apc",
            "UPS apc on web1: 420 s of runtime left (limit 600 s)",
        ),
    ]
    clock.advance(30)  # back on mains, runtime recovering: below clear (900 s) it stays firing
    mains = {"on_battery": 0, "online": 1, "low_battery": 0, "battery_runtime": 800}
    await alerts.observe(run(clock, {"ups": {"apc": mains}}, plugin_id="upsc"))
    assert [n.status for n in recorder.notices] == ["firing", "firing", "resolved"]
    clock.advance(30)
    await alerts.observe(
        run(clock, {"ups": {"apc": mains | {"battery_runtime": 2800}}}, plugin_id="upsc")
    )
    assert [n.status for n in recorder.notices] == ["firing", "firing", "resolved", "resolved"]


async def test_certificate_five_days_from_expiry_is_a_warning_not_critical(
    engine: tuple[AlertEngine, Clock, Recorder],
) -> None:
    alerts, clock, recorder = engine
    targets: dict[str, dict[str, float]] = {
        "shop.example:443": {"days_until_expiry": 5.2},
        "nas:443": {"days_until_expiry": 80},
    }
    await alerts.observe(run(clock, {"targets": targets}, plugin_id="tls-certificate"))
    assert told(recorder) == [
        (
            "certificate-expiring",
            "warning",
            "shop.example:443",
            "certificate of shop.example:443 expires in 5.2 days",
        )
    ]
    targets["shop.example:443"]["days_until_expiry"] = 2.5
    await alerts.observe(run(clock, {"targets": targets}, plugin_id="tls-certificate"))
    assert [n.rule_id for n in recorder.notices][-1] == "certificate-expiring-soon"
    assert recorder.notices[-1].severity == "critical"


async def test_sensor_above_its_own_high_mark_and_smart(
    engine: tuple[AlertEngine, Clock, Recorder],
) -> None:
    alerts, clock, recorder = engine
    chips = {
        "coretemp-isa-0000": {
            "temperatures": {
                "Package id 0": {"input": 84.0, "max": 80.0, "crit": 100.0},
                "Core 0": {"input": 60.0, "max": 80.0, "crit": 100.0},
            }
        }
    }
    await alerts.observe(run(clock, {"chips": chips}, plugin_id="lm-sensors"))
    clock.advance(120)
    await alerts.observe(run(clock, {"chips": chips}, plugin_id="lm-sensors"))
    assert [(r, s, i) for r, s, i, _ in told(recorder)] == [
        ("temperature-high", "warning", "coretemp-isa-0000/Package id 0")
    ]
    devices: dict[str, dict[str, int]] = {
        "sda": {"passed": 1, "reallocated_sectors": 8},
        "sdb": {"passed": 0},
    }
    await alerts.observe(run(clock, {"devices": devices}, plugin_id="smartctl"))
    clock.advance(300)
    devices["sda"]["reallocated_sectors"] = 12
    await alerts.observe(run(clock, {"devices": devices}, plugin_id="smartctl"))
    smart = [(r, i) for r, _, i, _ in told(recorder)[1:]]
    assert smart == [("smart-failing", "sdb"), ("reallocated-sectors-growing", "sda")]
    assert recorder.notices[-1].value == pytest.approx(48.0)  # 4 sectors in 5 min, per hour
