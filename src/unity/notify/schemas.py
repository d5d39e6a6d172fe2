"""What a channel looks like on the way in and out (shared by the API, CLI and dashboard).

The URL is a ``SecretStr``: it prints as ``**********``, validation errors
never echo it, and no output model has a field for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity.notify import Severity

__all__ = [
    "CHANNEL_NAME_PATTERN",
    "ChannelInput",
    "ChannelOut",
    "ChannelUpdate",
    "DeliveryOut",
    "Routing",
]

CHANNEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

ChannelName = Annotated[
    str, Field(pattern=CHANNEL_NAME_PATTERN, description="Letters, digits, _ and -.")
]
ChannelURL = Annotated[
    SecretStr,
    Field(
        min_length=3,
        max_length=4096,
        description="An Apprise URL (ntfy://, gotify://, discord://, tgram://, mailto://, "
        "json://...) or alertmanager://host:port (alertmanagers:// for HTTPS) to forward to "
        "a Prometheus Alertmanager. Holds tokens: stored encrypted, never shown again.",
    ),
]
Pattern = Annotated[str, Field(min_length=1, max_length=255)]
LabelMap = dict[Annotated[str, Field(min_length=1, max_length=64)], Pattern]


class Routing(BaseModel):
    """Which notices a channel gets: all of these must hold (empty lists match all)."""

    model_config = ConfigDict(extra="forbid")

    min_severity: Severity = Field(default="info", description="Lowest severity sent.")
    plugins: list[Pattern] = Field(
        default_factory=list, max_length=100, description="Plugin ids (shell patterns: disk-*)."
    )
    hosts: list[Pattern] = Field(
        default_factory=list, max_length=100, description="Host names (shell patterns)."
    )
    labels: LabelMap = Field(
        default_factory=dict, description="Labels a notice must carry (values: shell patterns)."
    )
    rate_limit: int = Field(
        default=10,
        ge=1,
        le=10000,
        description="Messages per rate window (UNITY_NOTIFY_RATE_WINDOW_SECONDS); notices "
        "beyond it wait and go out as one digest.",
    )
    enabled: bool = True


class ChannelInput(Routing):
    """A new channel."""

    name: ChannelName
    url: ChannelURL


class ChannelUpdate(BaseModel):
    """Fields to change; a new ``url`` replaces the stored one."""

    model_config = ConfigDict(extra="forbid")

    url: ChannelURL | None = None
    min_severity: Severity | None = None
    plugins: list[Pattern] | None = Field(default=None, max_length=100)
    hosts: list[Pattern] | None = Field(default=None, max_length=100)
    labels: LabelMap | None = None
    rate_limit: int | None = Field(default=None, ge=1, le=10000)
    enabled: bool | None = None


class ChannelOut(BaseModel):
    """A channel as listed: its URL only masked (``ntfy://…``)."""

    id: int
    name: str
    kind: Literal["apprise", "alertmanager"]
    target: str = Field(description="The URL's scheme only, e.g. ntfy://…")
    credential: str = Field(description="The credential that holds the URL")
    min_severity: Severity
    plugins: list[str]
    hosts: list[str]
    labels: dict[str, str]
    rate_limit: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


class DeliveryOut(BaseModel):
    """One entry of the delivery log."""

    id: int
    channel: str
    kind: str
    at: datetime
    state: Literal["sent", "failed", "dropped"]
    attempt: int = Field(description="Attempt number of the notices in this message")
    notices: int = Field(description="Notices in the message")
    title: str
    error: str = Field(description="Why it failed (never the channel's URL or tokens)")
    test: bool
    hub: str
