"""Hosts: the hub's own machine and every machine an agent runs on, the agents'
keys, and what discovery proposes to monitor on each host."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from unity.storage.models._base import Base
from unity.storage.types import JSONDocument, UTCDateTime, utcnow

__all__ = ["AgentKey", "DiscoveryProposal", "Host"]


class Host(Base):
    """A machine: ``kind`` "hub" (the hub's own, one row) or "agent".

    An agent's plugin instances are ``plugins`` rows with this ``host_id``."""

    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))
    # The agent's HostPlatform as it last reported it.
    platform: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # The agent's last AgentStatus (buffered, dropped, sent, problems, started_at).
    status: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # The enrollment token it joined with.
    enrollment_id: Mapped[str | None] = mapped_column(String(16))
    poll_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AgentKey(Base):
    """An agent's own key (``unitya_...``): one live key per agent; only a hash is kept."""

    __tablename__ = "agent_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    host_id: Mapped[str] = mapped_column(
        String(24), ForeignKey("hosts.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    enrollment_token_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DiscoveryProposal(Base):
    """A plugin discovery proposes for a host. ``status``: "open", "accepted",
    "dismissed" (stays so across scans) or "gone" (no longer seen)."""

    __tablename__ = "discovery_proposals"
    __table_args__ = (UniqueConstraint("host_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host_id: Mapped[str] = mapped_column(
        String(24), ForeignKey("hosts.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(200))
    plugin: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    credential: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The plugin instance (or hub plugin) accepting it enabled.
    plugin_id: Mapped[str | None] = mapped_column(String(64))
