"""The example plugin, checked with the SDK's pytest fixtures."""

import pytest
from unity_plugin_uptime import UptimePlugin

from unity_sdk import DependencyMissingError


async def test_collects_declared_metrics(unity_plugin_check):
    document = await unity_plugin_check(UptimePlugin)
    assert document["uptime"] > 0


async def test_missing_procfs_is_a_clear_error(collect, tmp_path):
    with pytest.raises(DependencyMissingError, match="procfs is not readable"):
        await collect(UptimePlugin, {"proc": str(tmp_path)})
