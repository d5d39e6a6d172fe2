"""Host pulse: an external Unity plugin that runs on a NAS, a Pi or a VM.

Only ``unity-sdk`` is needed on that machine. Start it with the hub's URL and
an enrollment token (first run only; the key is saved)::

    UNITY_HUB_URL=http://hub:8765 UNITY_ENROLLMENT_TOKEN=unitye_... unity-host-pulse
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import ExternalPluginBase, MetricField, PluginCategory, PluginMetadata

__all__ = ["HostPulse", "main"]


class PulseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_swap: bool = Field(default=True, description="Also report swap use")


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) * 1024
    return values


class HostPulse(ExternalPluginBase):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="host-pulse",
            name="Host pulse",
            version="1.0.0",
            description="Load averages and memory of the host the collector runs on",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["example", "external"],
            config_schema=PulseConfig,
            metrics=[
                MetricField(name="load.one", unit="tasks", description="1-minute load"),
                MetricField(name="memory.available", unit="bytes", description="Available"),
                MetricField(name="memory.total", unit="bytes", description="Installed"),
                MetricField(name="swap.*", unit="bytes", description="Swap total and free"),
            ],
            default_interval=30,
            timeout=5,
        )

    async def collect_data(self) -> dict[str, Any]:
        config = PulseConfig.model_validate(self.config)
        info = _meminfo()
        document: dict[str, Any] = {
            "load": {"one": os.getloadavg()[0]},
            "memory": {"available": info["MemAvailable"], "total": info["MemTotal"]},
        }
        if config.include_swap:
            document["swap"] = {"total": info["SwapTotal"], "free": info["SwapFree"]}
        return document


def main() -> int:
    hub = os.environ.get("UNITY_HUB_URL")
    if not hub:
        print("set UNITY_HUB_URL (and UNITY_ENROLLMENT_TOKEN for the first run)", file=sys.stderr)
        return 2
    return HostPulse().run_forever(hub, enrollment_token=os.environ.get("UNITY_ENROLLMENT_TOKEN"))
