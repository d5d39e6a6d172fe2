"""Plugins of the credentials tests: one collecting over a runner, one using a secret."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, SecretStr

from unity_sdk import MetricField, MetricKind, PluginBase, PluginMetadata


class RemoteLoadPlugin(PluginBase):
    """Reads the node name and load average of its target through ``self.runner``."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="remote-load",
            name="Remote load",
            version="1.0.0",
            supports_remote=True,
            default_interval=3600,
            timeout=15,
            metrics=[
                MetricField(name="load1", unit=""),
                MetricField(name="node", kind=MetricKind.INFO),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        node = (await self.runner.run(["uname", "-n"])).check().stdout.strip()
        load = (await self.runner.run(["cat", "/proc/loadavg"])).check().stdout.split()
        return {"node": node, "load1": float(load[0]), "runner": self.runner.host}


class DatabaseConfig(BaseModel):
    url: str = "postgresql://db.home.arpa/app"
    password: SecretStr


class SecretUserPlugin(PluginBase):
    """Proves it got its password without ever putting it in a document."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="secret-user",
            name="Secret user",
            version="1.0.0",
            config_schema=DatabaseConfig,
            default_interval=3600,
            timeout=5,
        )

    async def collect_data(self) -> dict[str, Any]:
        password = self.config["password"]
        value = password.get_secret_value() if isinstance(password, SecretStr) else password
        return {"sha256": hashlib.sha256(value.encode()).hexdigest(), "length": len(value)}


ALL = [RemoteLoadPlugin, SecretUserPlugin]
