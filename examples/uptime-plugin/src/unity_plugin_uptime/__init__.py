"""Uptime, idle time and available entropy from /proc: an example Unity plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    DependencyMissingError,
    MetricField,
    PluginBase,
    PluginCategory,
    PluginMetadata,
)

__all__ = ["UptimePlugin"]


class UptimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proc: str = Field(default="/proc", description="Where procfs is mounted")


class UptimePlugin(PluginBase[UptimeConfig]):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="uptime",
            name="Uptime",
            version="1.0.0",
            description="Seconds since boot, idle seconds and available kernel entropy",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["example", "procfs"],
            config_schema=UptimeConfig,
            metrics=[
                MetricField(name="uptime", unit="s", description="Time since boot"),
                MetricField(name="idle", unit="s", description="Idle time summed over CPUs"),
                MetricField(name="entropy", unit="bits", description="Available entropy"),
            ],
            default_interval=60,
            timeout=5,
        )

    async def collect_data(self) -> dict[str, Any]:
        proc = Path(self.config.proc)
        try:
            uptime, idle = (proc / "uptime").read_text().split()[:2]
            entropy = (proc / "sys/kernel/random/entropy_avail").read_text().strip()
        except FileNotFoundError as exc:
            raise DependencyMissingError(f"procfs is not readable at {proc}") from exc
        return {"uptime": float(uptime), "idle": float(idle), "entropy": int(entropy)}
