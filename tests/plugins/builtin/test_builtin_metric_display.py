"""Built-ins declare how the dashboard shows their constants and states (`display`)."""

from __future__ import annotations

from unity_catalogue.postgres import PostgresPlugin
from unity_catalogue.system_info import SystemInfoPlugin
from unity_sdk import MetricDisplay


def test_builtins_declare_their_constants_and_states() -> None:
    system = {m.name: m.shown_as for m in SystemInfoPlugin().get_metadata().metrics}
    for name in ("cpu.count.*", "memory.total", "swap.total", "boot_time"):
        assert system[name] is MetricDisplay.FACT, name
    assert system["cpu.percent"] is MetricDisplay.CHART
    postgres = {m.name: m.shown_as for m in PostgresPlugin().get_metadata().metrics}
    assert postgres["version_num"] is MetricDisplay.FACT
    assert postgres["in_recovery"] is MetricDisplay.STATE
    assert postgres["reachable"] is MetricDisplay.STATE
