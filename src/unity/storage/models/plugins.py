"""The plugin registry, collected documents, their rollup tiers, runs and state changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from unity.storage.models._base import Base, BigId
from unity.storage.types import JSONDocument, UTCDateTime, utcnow

__all__ = [
    "LatestMetric",
    "MetricSeries",
    "Plugin",
    "PluginEvent",
    "PluginExecution",
    "PluginMetric",
    "RollupHour",
    "RollupMark",
    "RollupMinute",
]


class Plugin(Base):
    """The registry: one row per plugin the hub knows (loaded or external)."""

    __tablename__ = "plugins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(128), default="")
    category: Mapped[str] = mapped_column(String(32), index=True)
    plugin_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONDocument)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    health_status: Mapped[str] = mapped_column(String(16), default="unknown")
    health_message: Mapped[str] = mapped_column(Text, default="")
    health_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    health_details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    # External plugins: the enrollment token whose registration owns this id.
    owner_enrollment_id: Mapped[str | None] = mapped_column(String(16))
    # A plugin instance run by an agent: its host, and the catalogue plugin it is
    # (the row's id is "{plugin_type}@{host_id}", unity_sdk.instance_id).
    host_id: Mapped[str | None] = mapped_column(
        String(24), ForeignKey("hosts.id", ondelete="CASCADE"), index=True
    )
    plugin_type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PluginMetric(Base):
    """One collected document: what a plugin saw on a host at a moment."""

    __tablename__ = "plugin_metrics"
    __table_args__ = (
        Index("ix_plugin_metrics_plugin_time", "plugin_id", "timestamp"),
        Index("ix_plugin_metrics_plugin_host_time", "plugin_id", "host", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plugin_id: Mapped[str] = mapped_column(String(64), ForeignKey("plugins.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class LatestMetric(Base):
    """The newest document per plugin and host, kept up to date on every write.

    ``/metrics`` and the overview read this instead of searching the history.
    """

    __tablename__ = "plugin_latest"

    plugin_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class PluginExecution(Base):
    """One run of a plugin, successful or not."""

    __tablename__ = "plugin_executions"
    __table_args__ = (Index("ix_plugin_executions_plugin_started", "plugin_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plugin_id: Mapped[str] = mapped_column(String(64), ForeignKey("plugins.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    metrics_count: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")


class PluginEvent(Base):
    """A change of a plugin's state (``unity_sdk.PluginState``), with why."""

    __tablename__ = "plugin_events"
    __table_args__ = (Index("ix_plugin_events_plugin_at", "plugin_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plugin_id: Mapped[str] = mapped_column(String(64), ForeignKey("plugins.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    previous: Mapped[str] = mapped_column(String(16))
    current: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")


class MetricSeries(Base):
    """A rolled-up series: a plugin's declared metric on a host; ``item``: what
    a ``*`` matched (``sda``), "" for a plain metric."""

    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("plugin_id", "metric", "host", "item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plugin_id: Mapped[str] = mapped_column(String(64), ForeignKey("plugins.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    item: Mapped[str] = mapped_column(Text, default="")


class _RollupColumns:
    """One series over one bucket (start, epoch seconds); avg = sum / count."""

    series_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metric_series.id", ondelete="CASCADE"), primary_key=True
    )
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    sum: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)


class RollupMinute(_RollupColumns, Base):
    __tablename__ = "metric_rollups_1m"


class RollupHour(_RollupColumns, Base):
    __tablename__ = "metric_rollups_1h"


class RollupMark(Base):
    """How far a plugin's tier is rolled (see ``unity.storage.rollups``).

    ``metrics`` maps each rolled metric to ``[since, booleans]``.
    """

    __tablename__ = "metric_rollup_marks"

    plugin_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True
    )
    tier: Mapped[str] = mapped_column(String(8), primary_key=True)
    until: Mapped[int] = mapped_column(BigInteger)  # buckets before it are rolled
    raw_id: Mapped[int] = mapped_column(BigInteger, default=0)  # for ids up to this
    kept_from: Mapped[int] = mapped_column(BigInteger, default=0)  # its retention
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
