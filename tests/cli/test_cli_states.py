"""What the CLI makes of the plugin states and health answers of a real hub."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.conftest import Hub, Invoke
from tests.cli.test_cli import as_admin, json_out
from tests.support.sample_plugins import CounterPlugin, FailingPlugin
from unity_sdk import HealthState, HealthStatus, PluginBase, PluginMetadata


class NothingHerePlugin(PluginBase):
    """Runs fine, but has nothing to watch on this host (no md arrays, say)."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="nothing-here", name="Nothing here", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}

    async def health_check(self) -> HealthStatus:
        return HealthStatus(status=HealthState.NOT_APPLICABLE, message="no md arrays")


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [CounterPlugin, FailingPlugin, NothingHerePlugin]


def test_nothing_to_monitor_is_not_a_failed_health_check(cli: Invoke, hub: Hub) -> None:
    answer = cli(*as_admin(hub, "plugins", "health", "nothing-here"))
    assert answer.exit_code == 0, answer.output
    assert "nothing-here: not_applicable: no md arrays" in answer.stdout


def test_list_shows_the_one_state_of_each_plugin(cli: Invoke, hub: Hub) -> None:
    for plugin_id in ("counter", "failing", "nothing-here"):
        assert cli(*as_admin(hub, "plugins", "enable", plugin_id)).exit_code == 0
        cli(*as_admin(hub, "plugins", "run", plugin_id))
    cli(*as_admin(hub, "plugins", "health", "nothing-here"))
    listed = json_out(cli, *as_admin(hub, "plugins", "list"))
    states = {item["id"]: item["state"] for item in listed["items"]}
    assert states == {"counter": "healthy", "failing": "degraded", "nothing-here": "not_applicable"}
    text = cli(*as_admin(hub, "plugins", "list")).stdout
    assert "not_applicable" in text


def test_events_show_each_state_change_with_its_cause(cli: Invoke, hub: Hub) -> None:
    assert cli(*as_admin(hub, "plugins", "enable", "failing")).exit_code == 0
    for _ in range(3):
        cli(*as_admin(hub, "plugins", "run", "failing"))
    answer = json_out(cli, *as_admin(hub, "plugins", "events", "failing"))
    changes = [(e["previous"], e["current"]) for e in answer["items"]]
    # Newest first. Enabling starts a first scheduled run at once, which may fail
    # before the enabling itself is recorded (then the change is disabled → degraded),
    # and on a busy machine the run's change can even be dated before the enabling's.
    assert {("disabled", "unknown"), ("disabled", "degraded")} & set(changes[-2:])
    assert changes[0] == ("degraded", "failing")
    assert "CollectionError" in answer["items"][0]["message"]
    text = cli(*as_admin(hub, "plugins", "events", "failing")).stdout
    assert "failing" in text
    assert "CollectionError" in text
    missing = cli(*as_admin(hub, "plugins", "events", "no-such-plugin"))
    assert missing.exit_code != 0
