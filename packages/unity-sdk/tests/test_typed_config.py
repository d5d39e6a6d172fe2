"""Typed plugin config: ``PluginBase[Model]`` receives the validated model instance.

The rules are the hub's (``unity_sdk.validate_config``); ``collect_once`` and
``check_plugin`` apply them exactly as the hub does, including the hub's own
keys and their bounds.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity_sdk import (
    ConfigError,
    MetadataError,
    PluginBase,
    PluginMetadata,
    check_plugin_class,
    validate_config,
)
from unity_sdk.testing import check_plugin, collect_once


class PingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="What to ping")
    timeout: float = Field(5, gt=0, description="Seconds to wait")
    token: SecretStr | None = Field(None, description="Sent as a bearer token")


class Ping(PluginBase[PingConfig]):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="ping", name="Ping", version="1.0.0", config_schema=PingConfig)

    async def collect_data(self) -> dict[str, Any]:
        token = self.config.token.get_secret_value() if self.config.token else ""
        return {"url": self.config.url, "timeout": self.config.timeout, "token": len(token)}


class LegacyPing(PluginBase):
    """A plain PluginBase with a model schema, written before typed config."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(id="legacy", name="Legacy", version="1.0.0", config_schema=PingConfig)

    async def collect_data(self) -> dict[str, Any]:
        return {"url": PingConfig.model_validate(self.config).url, "raw": self.config["url"]}


class JsonPing(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        schema = {
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "retries": {"type": "integer", "minimum": 0, "default": 2},
            },
            "required": ["url"],
        }
        return PluginMetadata(id="json-ping", name="J", version="1.0.0", config_schema=schema)

    async def collect_data(self) -> dict[str, Any]:
        return {"retries": self.config["retries"]}


def test_the_class_names_its_model() -> None:
    assert Ping.config_model is PingConfig
    assert LegacyPing.config_model is None

    class Child(Ping):
        pass

    assert Child.config_model is PingConfig


def test_a_mapping_is_validated_into_the_model() -> None:
    plugin = Ping({"url": "http://nas"})
    assert plugin.config == PingConfig(url="http://nas", timeout=5)
    plugin.config = {"url": "http://b", "timeout": 1}
    assert plugin.config.timeout == 1
    with pytest.raises(ConfigError) as refused:
        Ping({"url": "http://nas", "timeout": 0})
    assert [e["loc"] for e in refused.value.errors] == [["timeout"]]


def test_an_instance_is_kept_as_given() -> None:
    config = PingConfig(url="http://nas")
    assert Ping(config).config is config


def test_without_a_config_only_the_defaults_are_there() -> None:
    """The hub makes a bare instance to read the metadata; it never runs it."""
    plugin = Ping()
    assert isinstance(plugin.config, PingConfig)
    assert plugin.config.timeout == 5
    assert plugin.get_metadata().config_schema is PingConfig


def test_a_plain_plugin_keeps_getting_a_dict() -> None:
    plugin = LegacyPing(PingConfig(url="http://nas"))
    assert plugin.config == {"url": "http://nas", "timeout": 5, "token": None}
    assert JsonPing({"url": "u"}).config == {"url": "u"}


def test_the_rule_hands_over_a_model_or_a_dict() -> None:
    typed = validate_config(Ping().get_metadata(), {"url": "u", "interval": 30, "token": "t0k"})
    assert isinstance(typed.plugin, PingConfig)
    assert typed.plugin.token is not None
    assert typed.plugin.token.get_secret_value() == "t0k"
    assert (typed.interval, typed.stored["interval"]) == (30.0, 30)
    assert typed.values == {"url": "u", "timeout": 5, "token": typed.plugin.token}
    plain = validate_config(JsonPing().get_metadata(), {"url": "u", "retention_days": 7})
    assert plain.plugin == {"url": "u", "retries": 2}
    assert plain.retention_days == 7


async def test_collect_once_validates_like_the_hub() -> None:
    assert await collect_once(Ping, {"url": "http://nas", "token": "abc", "interval": 10}) == {
        "url": "http://nas",
        "timeout": 5,
        "token": 3,
    }
    assert await collect_once(LegacyPing, {"url": "u"}) == {"url": "u", "raw": "u"}
    assert await collect_once(JsonPing, {"url": "u"}) == {"retries": 2}
    # The hub's keys have the hub's bounds here too, and a JSON Schema is enforced.
    for plugin, config, loc in [
        (Ping, {"url": "u", "interval": 0}, ["interval"]),
        (Ping, {"url": "u", "retention_days": 3651}, ["retention_days"]),
        (Ping, {"url": "u", "targets": ["local"]}, ["targets"]),
        (JsonPing, {"url": "u", "retries": -1}, ["retries"]),
        (JsonPing, {}, []),
    ]:
        with pytest.raises(ConfigError) as refused:
            await collect_once(plugin, config)
        assert [e["loc"] for e in refused.value.errors] == [loc], (plugin, config)


async def test_an_instance_with_a_model_is_checked_by_collect_once() -> None:
    plugin = Ping(PingConfig(url="http://nas", token=SecretStr("abc")))
    assert await collect_once(plugin) == {"url": "http://nas", "timeout": 5, "token": 3}
    with pytest.raises(ConfigError) as refused:
        await collect_once(Ping())  # never configured: the url is missing
    assert [e["loc"] for e in refused.value.errors] == [["url"]]


def test_the_model_and_the_declared_schema_must_agree() -> None:
    class Other(BaseModel):
        url: str = ""

    class Mismatched(Ping):
        def get_metadata(self) -> PluginMetadata:
            return super().get_metadata().model_copy(update={"config_schema": Other})

    class Undeclared(Ping):
        def get_metadata(self) -> PluginMetadata:
            return super().get_metadata().model_copy(update={"config_schema": None})

    assert check_plugin_class(Ping).config_schema is PingConfig
    for cls, declared in [(Mismatched, "Other"), (Undeclared, "NoneType")]:
        with pytest.raises(MetadataError, match=f"config_schema is {declared}: they must name"):
            check_plugin_class(cls)


async def test_check_plugin_refuses_a_config_field_named_like_a_hub_key() -> None:
    """It used to pass here and fail in the hub's loader."""

    class Claims(BaseModel):
        targets: list[str] = []

    class Claiming(PluginBase[Claims]):
        def get_metadata(self) -> PluginMetadata:
            return PluginMetadata(id="claiming", name="C", version="1.0.0", config_schema=Claims)

        async def collect_data(self) -> dict[str, Any]:
            return {}

    with pytest.raises(AssertionError, match="declares targets: those keys belong to the hub"):
        await check_plugin(Claiming)


def test_the_config_json_schema_is_a_fresh_copy_each_time() -> None:
    # Generated once per model class; a caller that edits its copy changes no other's.
    metadata = Ping().get_metadata()
    first = metadata.config_json_schema()
    assert first == PingConfig.model_json_schema()
    first["properties"]["url"]["description"] = "edited"
    first["required"].append("timeout")
    second = metadata.config_json_schema()
    assert second == PingConfig.model_json_schema()
    assert second["properties"]["url"]["description"] == "What to ping"
