"""The loader: built-in list, entry points, validation, failures reported."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import sample_plugins

from unity.plugins.loader import PluginLoader
from unity_sdk import MetricField, PluginBase, PluginMetadata

GROUP = "unity.plugins.loader-tests"


@pytest.fixture
def installed_package(tmp_path: Path) -> Iterator[Path]:
    """A real installed distribution (dist-info with entry points) on sys.path.

    It provides one good plugin, one whose module fails to import, one whose
    entry-point name does not match its id, and one that is not a plugin.
    """
    site = tmp_path / "site"
    site.mkdir()
    (site / "acme_plugins.py").write_text(
        textwrap.dedent(
            """
            from unity_sdk import PluginBase, PluginMetadata, PluginCategory

            class AcmeTemp(PluginBase):
                def get_metadata(self):
                    return PluginMetadata(
                        id="acme-temp", name="Acme temperature", version="0.3.1",
                        category=PluginCategory.THERMAL,
                    )

                async def collect_data(self):
                    return {"celsius": 41.5}

            class Misnamed(AcmeTemp):
                pass

            NOT_A_PLUGIN = 42
            """
        )
    )
    (site / "acme_broken.py").write_text("import does_not_exist_anywhere\n")
    dist = site / "acme_plugins-0.3.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugins\nVersion: 0.3.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [{GROUP}]
            acme-temp = acme_plugins:AcmeTemp
            acme-broken = acme_broken:Plugin
            acme-misnamed = acme_plugins:Misnamed
            acme-number = acme_plugins:NOT_A_PLUGIN
            """
        )
    )
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    for name in ("acme_plugins", "acme_broken"):
        sys.modules.pop(name, None)


def test_entry_point_plugins_load_and_broken_ones_are_reported(installed_package: Path) -> None:
    loaded, failures = PluginLoader([sample_plugins.CounterPlugin], group=GROUP).discover()
    by_id = {p.id: p for p in loaded}
    assert set(by_id) == {"counter", "acme-temp"}
    assert by_id["acme-temp"].source == "entry_point"
    assert by_id["acme-temp"].distribution == "acme-plugins"
    assert by_id["counter"].source == "builtin"
    errors = {f.name: f.error for f in failures}
    assert set(errors) == {"acme-broken", "acme-misnamed", "acme-number"}
    assert "ModuleNotFoundError" in errors["acme-broken"]
    assert "entry point 'acme-misnamed' loads plugin id 'acme-temp'" in errors["acme-misnamed"]
    assert "not a subclass of unity_sdk.PluginBase" in errors["acme-number"]


class SyncCollect(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="sync-collect", name="Sync", version="1.0.0")

    def collect_data(self) -> dict[str, Any]:  # type: ignore[override]
        return {}


class BadId(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="Bad_Id", name="Bad", version="1.0.0")

    async def collect_data(self) -> dict[str, Any]:
        return {}


class BadSchema(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="bad-schema",
            name="Bad schema",
            version="1.0.0",
            config_schema={"type": "object", "properties": {"n": {"type": "nonsense"}}},
        )

    async def collect_data(self) -> dict[str, Any]:
        return {}


class ClaimsHubKey(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="claims-hub-key",
            name="Claims a hub key",
            version="1.0.0",
            config_schema={"type": "object", "properties": {"interval": {"type": "number"}}},
        )

    async def collect_data(self) -> dict[str, Any]:
        return {}


class Abstract(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="abstract", name="Abstract", version="1.0.0")


class DuplicateCounter(sample_plugins.CounterPlugin):
    pass


def test_invalid_plugins_are_skipped_with_a_reason() -> None:
    loader = PluginLoader(
        [
            SyncCollect,
            BadId,
            BadSchema,
            ClaimsHubKey,
            Abstract,
            sample_plugins.CounterPlugin,
            DuplicateCounter,
        ],
        group=GROUP,
    )
    loaded, failures = loader.discover()
    assert [p.id for p in loaded] == ["counter"]
    errors = {f.name: f.error for f in failures}
    assert "collect_data must be an async method" in errors["SyncCollect"]
    assert "Bad_Id" in errors["BadId"]
    assert "config schema of 'bad-schema' is invalid" in errors["BadSchema"]
    assert "does not implement: collect_data" in errors["Abstract"]
    assert "declares interval: those keys belong to the hub" in errors["ClaimsHubKey"]
    assert "duplicate plugin id" in errors["counter"]


def test_settings_can_skip_a_plugin() -> None:
    loader = PluginLoader(sample_plugins.ALL, group=GROUP, skip=["failing"])
    loaded, failures = loader.discover()
    assert "failing" not in {p.id for p in loaded}
    assert failures == []


def test_builtins_are_the_default_list() -> None:
    loaded, failures = PluginLoader(group=GROUP).discover()
    assert failures == []
    assert {"system-info", "process-monitor", "disk-monitor", "network-monitor"} <= {
        p.id for p in loaded
    }


class ClashingNames(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="clashing",
            name="Clashing",
            version="1.0.0",
            metrics=[
                MetricField(name="latency", unit="s"),
                MetricField(name="latency_ms", unit="ms"),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        return {}


def test_a_plugin_whose_metrics_share_a_prometheus_name_is_refused() -> None:
    loaded, failures = PluginLoader(
        [ClashingNames, sample_plugins.CounterPlugin], group=GROUP
    ).discover()
    assert [p.id for p in loaded] == ["counter"]
    [failure] = failures
    assert failure.name == "ClashingNames"
    assert failure.error == (
        "MetadataError: metadata of plugin 'clashing' is not valid: metrics 'latency' (gauge) "
        "and 'latency_ms' (gauge) "
        "map to the same Prometheus name 'unity_clashing_latency_seconds'; rename one of them"
    )
