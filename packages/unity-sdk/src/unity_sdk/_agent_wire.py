"""The wire models of the agent API, shared by the hub and ``unity-agent``.

An agent is one process per host that runs catalogue plugins there. It joins
once with an enrollment token and from then on uses its own key (one per
agent, ``unitya_...``). Endpoints (all under ``/api/agents/v1``):

- ``POST /join`` (enrollment token) ``JoinRequest`` -> ``JoinResponse``
- ``GET /assignments`` (agent key) -> ``Assignments``: what runs on this host
- ``POST /status`` (agent key) ``AgentStatus`` -> ``StatusAccepted``
- ``PUT /proposals`` (agent key) ``ProposalReport`` -> ``ProposalsAccepted``

Samples and health go through the external-plugin path with the agent key:
``POST /api/plugins/v2/{instance_id}/metrics`` and ``.../health``, where the
instance must be one of this agent's.

A plugin *instance* is one catalogue plugin on one host; its id is
``{plugin}@{host_id}`` (:func:`instance_id`).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from unity_sdk._numbers import INT_MAX, require_storable_numbers
from unity_sdk._wire import KEY_SECRET_PATTERN, MAX_HOST_LENGTH
from unity_sdk.metadata import PLUGIN_ID_PATTERN

__all__ = [
    "AGENT_API_PATH",
    "AGENT_KEY_PREFIX",
    "HOST_ID_PATTERN",
    "MAX_HOST_ID_LENGTH",
    "MAX_PROPOSALS",
    "AgentStatus",
    "Assignment",
    "Assignments",
    "HostPlatform",
    "JoinRequest",
    "JoinResponse",
    "Proposal",
    "ProposalReport",
    "ProposalsAccepted",
    "StatusAccepted",
    "host_id_for",
    "instance_id",
    "split_instance_id",
]

AGENT_API_PATH = "/api/agents/v1"
AGENT_KEY_PREFIX = "unitya_"
MAX_HOST_ID_LENGTH = 24
# Proposals in one ProposalReport (one scan of one host).
MAX_PROPOSALS = 500
# Lower-case letters, digits and inner hyphens: safe in an instance id, a URL
# and a Prometheus label.
HOST_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$"
_INSTANCE_SEPARATOR = "@"


def host_id_for(hostname: str) -> str:
    """The host id a hostname proposes: its first label, lower-cased, with
    anything but letters and digits turned into hyphens, at most 24 characters
    (``"NAS-01.lan"`` -> ``"nas-01"``). ``"host"`` when nothing is left."""
    label = hostname.strip().split(".", 1)[0]
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_label.lower()).strip("-")
    slug = slug[:MAX_HOST_ID_LENGTH].rstrip("-")
    return slug or "host"


def instance_id(plugin: str, host_id: str) -> str:
    """The id of ``plugin`` running on ``host_id``: ``"system-info@nas"``."""
    return f"{plugin}{_INSTANCE_SEPARATOR}{host_id}"


def split_instance_id(value: str) -> tuple[str, str] | None:
    """``(plugin, host_id)`` of an instance id, ``None`` for a plain plugin id."""
    plugin, separator, host = value.partition(_INSTANCE_SEPARATOR)
    if not separator or not re.fullmatch(PLUGIN_ID_PATTERN, plugin):
        return None
    if not re.fullmatch(HOST_ID_PATTERN, host):
        return None
    return plugin, host


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostPlatform(_Wire):
    """What an agent tells the hub about its machine (shown on the host card)."""

    hostname: str = Field(min_length=1, max_length=MAX_HOST_LENGTH)
    os: str = Field(default="", max_length=200, description='e.g. "Linux 6.1.0-18-amd64"')
    distribution: str = Field(default="", max_length=200, description='e.g. "Debian 12"')
    architecture: str = Field(default="", max_length=64)
    cpu_count: int | None = Field(default=None, ge=1, le=INT_MAX)
    memory_bytes: int | None = Field(default=None, ge=0)
    agent_version: str = Field(default="", max_length=64)
    python: str = Field(default="", max_length=64)


class JoinRequest(_Wire):
    """An agent asks to join with an enrollment token (sent as the bearer)."""

    platform: HostPlatform
    host_id: str | None = Field(
        default=None,
        pattern=HOST_ID_PATTERN,
        description="The id the agent proposes; by default host_id_for(platform.hostname)",
    )
    key_secret: str | None = Field(
        default=None,
        pattern=KEY_SECRET_PATTERN,
        repr=False,
        description=(
            "The secret of the agent key it proposes (new_key_secret). A retry with the "
            "same enrollment token, host id and secret returns the same key and spends "
            "no further use of the token."
        ),
    )


class JoinResponse(_Wire):
    """Returned once (and to a retry with the same ``key_secret``)."""

    host_id: str
    api_key: str
    key_id: str
    poll_seconds: float = Field(description="How often to ask for assignments")


class Assignment(_Wire):
    """One plugin instance the agent runs, with the config it runs with.

    Credential references are resolved for this agent only: ``config`` holds
    the real values, so it is never logged."""

    instance_id: str = Field(min_length=1, max_length=64)
    plugin: str = Field(pattern=PLUGIN_ID_PATTERN, max_length=64)
    config: dict[str, Any] = Field(default_factory=dict, repr=False)
    interval: float = Field(gt=0, le=86400, description="Seconds between runs")
    timeout: float | None = Field(default=None, gt=0, description="Seconds a run may take")
    enabled: bool = True


class Assignments(_Wire):
    """Everything that runs on the host. ``revision`` changes whenever any of it does."""

    host_id: str
    revision: str
    poll_seconds: float
    instances: list[Assignment] = Field(default_factory=list)


class AgentStatus(_Wire):
    """The agent's own state, sent every poll: its buffer and what it cannot run."""

    platform: HostPlatform
    started_at: AwareDatetime
    buffered: int = Field(default=0, ge=0, le=INT_MAX, description="Samples waiting to be sent")
    dropped: int = Field(default=0, ge=0, le=INT_MAX, description="Samples lost to a full buffer")
    sent: int = Field(default=0, ge=0, description="Samples the hub accepted since start")
    problems: dict[str, str] = Field(
        default_factory=dict,
        description="instance id -> why the agent cannot run it (unknown plugin, missing extra)",
    )


class StatusAccepted(_Wire):
    host_id: str
    received_at: datetime


class Proposal(_Wire):
    """Something discovery found on a host and a plugin that could watch it.

    A proposal is a suggestion, never an action: nothing runs until someone
    accepts it. ``key`` is stable across scans (``"postgres:5432"``), so a
    dismissed proposal stays dismissed."""

    key: str = Field(min_length=1, max_length=200)
    plugin: str = Field(pattern=PLUGIN_ID_PATTERN, max_length=64)
    title: str = Field(min_length=1, max_length=200, description='"PostgreSQL on port 5432"')
    reason: str = Field(default="", max_length=1000, description="What was seen")
    config: dict[str, Any] = Field(default_factory=dict, description="Suggested config")
    credential: str | None = Field(
        default=None,
        max_length=200,
        description="The config field that needs a stored credential, if any",
    )

    @field_validator("config")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        return require_storable_numbers(value, name="config")


class ProposalReport(_Wire):
    """Every proposal of one scan: the hub adds new ones and closes those no
    longer seen (dismissed ones stay dismissed)."""

    proposals: list[Proposal] = Field(default_factory=list, max_length=MAX_PROPOSALS)


class ProposalsAccepted(_Wire):
    host_id: str
    open: int = Field(description="Proposals waiting for a decision on this host")
