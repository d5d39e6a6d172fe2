"""Small plugins with known behaviour, used to exercise the hub."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity_sdk import (
    CollectionError,
    HealthStatus,
    Isolation,
    MetricField,
    MetricKind,
    PluginAuthError,
    PluginBase,
    PluginCategory,
    PluginMetadata,
)


def _meta(plugin_id: str, **extra: Any) -> PluginMetadata:
    values: dict[str, Any] = {
        "id": plugin_id,
        "name": plugin_id.replace("-", " ").title(),
        "version": "1.0.0",
        "description": f"test plugin {plugin_id}",
        "author": "tests",
        "category": PluginCategory.CUSTOM,
        "default_interval": 60,
        "timeout": 5,
    }
    values.update(extra)
    return PluginMetadata(**values)


class CounterPlugin(PluginBase):
    """Counts its runs; records every lifecycle hook it receives."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.runs = 0
        self.events: list[str] = []

    def get_metadata(self) -> PluginMetadata:
        return _meta(
            "counter",
            metrics=[
                MetricField(name="runs", unit="count", kind=MetricKind.COUNTER),
                MetricField(name="value", unit="%", description="A gauge"),
                MetricField(name="disks.*.used", unit="bytes"),
                MetricField(name="label", kind=MetricKind.INFO),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        self.runs += 1
        return {
            "runs": self.runs,
            "value": 42.5,
            "disks": {"sda": {"used": 100}, "sdb": {"used": 200}},
            "label": "hello",
        }

    async def on_enable(self) -> None:
        self.events.append("enable")

    async def on_disable(self) -> None:
        self.events.append("disable")

    async def on_error(self, exc: BaseException) -> None:
        self.events.append(f"error:{type(exc).__name__}")

    async def on_config_change(self, new: dict[str, Any]) -> None:
        self.events.append("config")


class FailingPlugin(PluginBase):
    """Raises on every collection."""

    def get_metadata(self) -> PluginMetadata:
        return _meta("failing")

    async def collect_data(self) -> dict[str, Any]:
        raise CollectionError("the service answered 500")


class AuthFailingPlugin(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return _meta("auth-failing")

    async def collect_data(self) -> dict[str, Any]:
        raise PluginAuthError("password rejected")


class HangingPlugin(PluginBase):
    """Awaits forever: only cancellation ends a run."""

    cancelled = 0

    def get_metadata(self) -> PluginMetadata:
        return _meta("hanging", timeout=0.5)

    async def collect_data(self) -> dict[str, Any]:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            type(self).cancelled += 1
            raise
        return {}


class BlockingPlugin(PluginBase):
    """Blocks its thread with time.sleep, as a careless sync collector would."""

    def get_metadata(self) -> PluginMetadata:
        return _meta("blocking", timeout=0.5)

    async def collect_data(self) -> dict[str, Any]:
        time.sleep(self.config.get("seconds", 2.0))
        return {"slept": True}


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Where the service answers")
    port: int = Field(default=8080, ge=1, le=65535)
    password: SecretStr | None = None
    mode: str = Field(default="fast", pattern="^(fast|slow)$")


class ConfiguredPlugin(PluginBase[ServerConfig]):
    """Needs a url; has a secret password field; keeps each config it is told of."""

    def __init__(self, config: ServerConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.changes: list[ServerConfig] = []

    def get_metadata(self) -> PluginMetadata:
        return _meta("configured", config_schema=ServerConfig)

    async def collect_data(self) -> dict[str, Any]:
        return {"url": self.config.url, "port": self.config.port}

    async def on_config_change(self, new: ServerConfig) -> None:
        self.changes.append(new)

    async def health_check(self) -> HealthStatus:
        if self.config.mode == "slow":
            return HealthStatus.degraded("running in slow mode")
        return HealthStatus.healthy("ok")


class JsonSchemaPlugin(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return _meta(
            "json-schema",
            config_schema={
                "type": "object",
                "properties": {
                    "hosts": {"type": "array", "items": {"type": "string"}, "default": []},
                    "count": {"type": "integer", "minimum": 1, "default": 3},
                },
                "additionalProperties": False,
            },
        )

    async def collect_data(self) -> dict[str, Any]:
        return {"count": self.config["count"], "hosts": len(self.config["hosts"])}


class IsolatedHangingPlugin(PluginBase):
    """Hangs in blocking code inside a child process; only a kill stops it."""

    def get_metadata(self) -> PluginMetadata:
        return _meta("isolated-hanging", isolation=Isolation.PROCESS, timeout=1.5)

    async def collect_data(self) -> dict[str, Any]:
        if self.config.get("hang", True):
            time.sleep(3600)
        return {"pid_ok": True}


class IsolatedOkPlugin(PluginBase):
    def get_metadata(self) -> PluginMetadata:
        return _meta(
            "isolated-ok",
            isolation=Isolation.PROCESS,
            timeout=20,
            metrics=[MetricField(name="pid", kind=MetricKind.GAUGE)],
        )

    async def collect_data(self) -> dict[str, Any]:
        import os

        return {"pid": os.getpid()}


ALL = [
    CounterPlugin,
    FailingPlugin,
    AuthFailingPlugin,
    HangingPlugin,
    BlockingPlugin,
    ConfiguredPlugin,
    JsonSchemaPlugin,
]
