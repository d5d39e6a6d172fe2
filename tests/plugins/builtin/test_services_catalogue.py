"""The host-services built-ins: their categories, their order, and that the loader accepts them."""

from __future__ import annotations

from unity.plugins.loader import PluginLoader
from unity_catalogue import BUILTIN_PLUGINS

EXPECTED = [
    ("docker-stats", "container"),
    ("docker", "container"),
    ("lxc-list", "container"),
    ("virsh", "container"),
    ("ss", "network"),
    ("fail2ban", "security"),
    ("iperf3", "network"),
    ("systemctl", "system"),
    ("journalctl", "system"),
    ("ollama", "ai_ml"),
]
# The plugins these tests cover: host services, read with a command or a local API.
SERVICES_PLUGINS = [
    cls for cls in BUILTIN_PLUGINS if cls().get_metadata().id in {i for i, _ in EXPECTED}
]


def test_group_lists_its_plugins_in_a_stable_order() -> None:
    metadata = [cls().get_metadata() for cls in SERVICES_PLUGINS]
    assert [(m.id, m.category.value) for m in metadata] == EXPECTED


def test_group_is_part_of_the_builtins() -> None:
    position = BUILTIN_PLUGINS.index(SERVICES_PLUGINS[0])
    assert BUILTIN_PLUGINS[position : position + len(SERVICES_PLUGINS)] == SERVICES_PLUGINS


def test_loader_accepts_every_plugin() -> None:
    loaded, failures = PluginLoader(
        SERVICES_PLUGINS, group="unity.plugins.none-in-tests"
    ).discover()
    assert failures == []
    assert [plugin.id for plugin in loaded] == [plugin_id for plugin_id, _ in EXPECTED]
    assert all(plugin.source == "builtin" for plugin in loaded)


def test_command_plugins_run_remotely_and_http_plugins_do_not() -> None:
    for cls in SERVICES_PLUGINS:
        metadata = cls().get_metadata()
        assert metadata.supports_remote == bool(metadata.requires.commands), metadata.id
        assert metadata.timeout < metadata.default_interval, metadata.id
