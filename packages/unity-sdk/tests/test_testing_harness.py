"""The author tooling: collect_once, assert_valid_document and the pytest fixtures."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, Field

from unity_sdk import (
    ConfigError,
    HubClient,
    HubRequestError,
    MetricField,
    PluginBase,
    PluginMetadata,
)
from unity_sdk.pytest_plugin import Collector
from unity_sdk.testing import FakeHub, assert_valid_document, check_plugin, collect_once


class PingConfig(BaseModel):
    host: str
    count: int = Field(default=3, ge=1)


class Ping(PluginBase):
    events: list[str]

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.events = []

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="ping",
            name="Ping",
            version="1.0.0",
            config_schema=PingConfig,
            metrics=[
                MetricField(name="rtt", unit="ms"),
                MetricField(name="sent", kind="counter"),
                MetricField(name="target", kind="info"),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        self.events.append("collect")
        if self.config["host"] == "explode":
            raise RuntimeError("boom")
        return {"rtt": 1.5, "sent": self.config["count"], "target": self.config["host"]}

    async def on_enable(self) -> None:
        self.events.append("enable")

    async def on_disable(self) -> None:
        self.events.append("disable")


class Schemaless(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="schemaless",
            name="Schemaless",
            version="1.0.0",
            config_schema={"type": "object", "properties": {"unit": {"default": "C"}}},
        )

    async def collect_data(self) -> dict[str, Any]:
        return dict(self.config)


async def test_collect_once_validates_the_config_and_fills_defaults() -> None:
    document = await collect_once(Ping, {"host": "router", "interval": 30})
    assert document == {"rtt": 1.5, "sent": 3, "target": "router"}


async def test_collect_once_runs_the_lifecycle_even_when_collection_fails() -> None:
    plugin = Ping()
    with pytest.raises(RuntimeError, match="boom"):
        await collect_once(plugin, {"host": "explode"})
    assert plugin.events == ["enable", "collect", "disable"]


async def test_collect_once_keeps_an_instance_config() -> None:
    plugin = Ping({"host": "nas", "count": 5})
    assert (await collect_once(plugin))["sent"] == 5


async def test_collect_once_rejects_a_config_that_does_not_fit() -> None:
    with pytest.raises(ConfigError) as caught:
        await collect_once(Ping, {"count": 0})
    assert {tuple(error["loc"]) for error in caught.value.errors} == {("host",), ("count",)}


async def test_collect_once_fills_json_schema_defaults() -> None:
    assert await collect_once(Schemaless) == {"unit": "C"}
    assert await collect_once(Schemaless, {"unit": "F"}) == {"unit": "F"}


def test_assert_valid_document_lists_every_problem() -> None:
    metadata = Ping().get_metadata()
    assert_valid_document(metadata, {"rtt": 2, "sent": 1, "target": "x"})
    with pytest.raises(AssertionError) as caught:
        assert_valid_document(metadata, {"rtt": "fast", "target": "x"})
    message = str(caught.value)
    assert "'rtt' is declared gauge" in message
    assert "'sent' is missing" in message


async def test_check_plugin_fails_on_an_undeclared_shape() -> None:
    class Liar(Ping):
        async def collect_data(self) -> dict[str, Any]:
            return {"rtt": None, "sent": 1, "target": "x"}

    assert (await check_plugin(Ping, {"host": "a"}))["target"] == "a"
    with pytest.raises(AssertionError, match="'rtt'"):
        await check_plugin(Liar, {"host": "a"})


# -- the fixtures the pytest plugin installs ----------------------------------------


def test_the_pytest_plugin_is_registered() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert names["unity_sdk"] == "unity_sdk.pytest_plugin"


async def test_collect_fixture(collect: Collector) -> None:
    assert (await collect(Ping, {"host": "router"}))["target"] == "router"


async def test_unity_plugin_check_fixture(unity_plugin_check: Collector) -> None:
    document = await unity_plugin_check(Ping, {"host": "router"})
    assert document["rtt"] == 1.5


async def test_fake_hub_fixture(fake_hub: FakeHub) -> None:
    async with HubClient("http://hub", transport=fake_hub.transport) as client:
        answer = await client.register_plugin(
            Ping().get_metadata(), enrollment_token=fake_hub.enrollment_token
        )
    assert answer.plugin_id == "ping"
    assert "ping" in fake_hub.plugins


# -- the SDK stays independent of the hub -------------------------------------------


def test_the_sdk_imports_nothing_of_the_hub() -> None:
    probe = (
        "import json, sys, unity_sdk, unity_sdk.testing, unity_sdk.run;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    roots = {name.split(".")[0] for name in json.loads(output)}
    assert not roots & {"fastapi", "sqlalchemy", "unity", "starlette", "pytest"}


def test_the_sdk_depends_only_on_its_small_set() -> None:
    """pydantic and httpx, plus jsonschema (with its referencing) for the rulebook's
    JSON-Schema configs, and typing-extensions for the typed config's TypeVar default:
    never the hub's server stack."""
    requires = importlib.metadata.requires("unity-sdk") or []
    names = {
        req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip() for req in requires
    }
    assert names == {"pydantic", "httpx", "jsonschema", "referencing", "typing-extensions"}


# -- Prometheus names ---------------------------------------------------------------


class Clashing(PluginBase):
    """Declares a count of endpoints up and each endpoint's up under one name."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="clashing",
            name="Clashing",
            version="1.0.0",
            metrics=[
                MetricField(name="endpoint_up", unit="count"),
                MetricField(name="endpoints.*.up", unit="bool"),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"endpoint_up": 1, "endpoints": {"web": {"up": 1}}}


CLASH = "map to the same Prometheus name 'unity_clashing_endpoint_up'"


async def test_check_plugin_fails_on_a_prometheus_name_collision() -> None:
    with pytest.raises(AssertionError, match=CLASH):
        await check_plugin(Clashing)


async def test_fake_hub_refuses_a_prometheus_name_collision(fake_hub: FakeHub) -> None:
    async with HubClient("http://hub", transport=fake_hub.transport) as client:
        with pytest.raises(HubRequestError, match="not valid") as refused:
            await client.register_plugin(
                Clashing().get_metadata(), enrollment_token=fake_hub.enrollment_token
            )
    assert refused.value.status == 422
    assert [d["loc"] for d in refused.value.details] == [["metadata", "metrics"]]
    assert CLASH in refused.value.details[0]["msg"]
    assert "clashing" not in fake_hub.plugins
