"""Bodies of the hosts API (``/api/hosts``): host cards, proposals, and what admins send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity.api.schemas import PluginSummary
from unity_sdk import PLUGIN_ID_PATTERN, PluginState

__all__ = [
    "AcceptProposal",
    "Accepted",
    "AddPlugin",
    "AgentStatusOut",
    "HostDetailOut",
    "HostOut",
    "HostPluginOut",
    "PlatformOut",
    "ProposalOut",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PlatformOut(_Out):
    os: str = Field(description='e.g. "Linux 6.1.0-18-amd64"')
    distribution: str = Field(description='e.g. "Debian GNU/Linux 12 (bookworm)"')
    architecture: str
    cpu_count: int | None
    memory_bytes: int | None
    agent_version: str


class AgentStatusOut(_Out):
    buffered: int = Field(description="Samples the agent holds until the hub takes them")
    dropped: int = Field(description="Samples it lost to a full buffer")
    sent: int = Field(description="Samples the hub accepted since the agent started")
    problems: dict[str, str] = Field(description="Instance id -> why the agent cannot run it")
    started_at: str | None


class HostPluginOut(_Out):
    id: str = Field(description='The plugin id; on an agent\'s host "{plugin}@{host}"')
    plugin_type: str = Field(description="The catalogue plugin it is")
    name: str
    enabled: bool
    state: PluginState
    message: str = Field(description="Its last error, else its health message")


class HostOut(_Out):
    id: str
    hostname: str
    kind: str = Field(description='"hub" (the hub\'s own machine) or "agent"')
    state: PluginState = Field(
        description="stale when its agent stopped calling, else its plugins' worst state"
    )
    last_seen_at: datetime | None = Field(description="When its agent last called the hub")
    updated_at: datetime | None = Field(description="When its newest document was taken")
    platform: PlatformOut
    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None = Field(description="The root filesystem, else the fullest one")
    plugins: list[HostPluginOut]
    open_proposals: int = Field(description="Discovery proposals waiting for a decision")
    agent: AgentStatusOut | None = Field(description="The agent's last status (agents only)")


class ProposalOut(_Out):
    id: int
    key: str = Field(description='Stable across scans, e.g. "postgres:5432"')
    plugin: str
    title: str
    reason: str
    config: dict[str, Any] = Field(description="The suggested config")
    credential: str | None = Field(description="The config field that needs a stored credential")
    status: str = Field(description="open, accepted, dismissed or gone (no longer seen)")
    first_seen_at: datetime
    last_seen_at: datetime
    decided_at: datetime | None
    plugin_id: str | None = Field(description="The plugin accepting it enabled")


class HostDetailOut(HostOut):
    instances: list[PluginSummary] = Field(description="Every plugin on the host, disabled too")
    proposals: list[ProposalOut]


class AddPlugin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(pattern=PLUGIN_ID_PATTERN, max_length=64, description="A catalogue id")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Validated against the plugin's config schema"
    )
    interval: float | None = Field(default=None, gt=0, le=86400, description="Seconds")
    enabled: bool = True


class AcceptProposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(
        default_factory=dict, description="Fields that override the suggested config"
    )
    credential: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A stored credential's name, referenced by the proposal's credential field",
    )


class Accepted(BaseModel):
    plugin_id: str
