"""Notification channels, the outbox and the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from unity.storage.models._base import Base, BigId
from unity.storage.types import JSONDocument, UTCDateTime, utcnow

__all__ = ["NotificationChannel", "NotificationDelivery", "NotificationOutbox"]


class NotificationChannel(Base):
    """Where notifications go: a channel's routing; its URL (tokens) is a credential."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64))
    credential: Mapped[str] = mapped_column(
        String(128), ForeignKey("credentials.name", ondelete="RESTRICT"), index=True
    )
    min_severity: Mapped[str] = mapped_column(String(16), default="info")
    plugins: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    hosts: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    labels: Mapped[dict[str, str]] = mapped_column(JSONDocument, default=dict)
    rate_limit: Mapped[int] = mapped_column(Integer, default=10)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationOutbox(Base):
    """One notice waiting for one channel; hubs claim due rows, so each goes out once."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_state_due", "state", "due_at"),
        Index("ix_notification_outbox_channel_group", "channel_id", "group_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("notification_channels.id", ondelete="CASCADE")
    )
    group_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    notice: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(32), index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class NotificationDelivery(Base):
    """The delivery log: one message sent (or not) to one channel, and why."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("notification_channels.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    notices: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    hub: Mapped[str] = mapped_column(String(255), default="")
