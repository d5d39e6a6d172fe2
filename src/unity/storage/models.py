"""The tables: plugin registry, metrics and their rollup tiers, executions, hub
tokens, credentials and notifications.

Only sealed bytes of a secret are stored in ``credentials``; ``public`` holds
what may be shown (fingerprints, public keys, user names, certificate subject
and expiry).
"""

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
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from unity.storage.types import JSONDocument, UTCDateTime, utcnow

__all__ = [
    "ApiToken",
    "Base",
    "BatchReceipt",
    "Credential",
    "CredentialAudit",
    "EnrollmentToken",
    "LatestMetric",
    "MetricSeries",
    "NotificationChannel",
    "NotificationDelivery",
    "NotificationOutbox",
    "Plugin",
    "PluginApiKey",
    "PluginEvent",
    "PluginExecution",
    "PluginMetric",
    "RollupHour",
    "RollupMark",
    "RollupMinute",
    "Server",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, so the big key is INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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


class ApiToken(Base):
    """A hub token for people and scripts; only a hash of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EnrollmentToken(Base):
    """An admin-made token an external plugin trades for its own API key."""

    __tablename__ = "enrollment_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by an admin to hand this one plugin id over to a new registration.
    takeover_plugin_id: Mapped[str | None] = mapped_column(String(64))


class PluginApiKey(Base):
    """An external plugin's own key; it works only for its plugin id."""

    __tablename__ = "plugin_api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    plugin_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("plugins.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    enrollment_token_id: Mapped[str | None] = mapped_column(String(16))
    hostname: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BatchReceipt(Base):
    """A metric batch already stored: a retried batch id is not stored again."""

    __tablename__ = "batch_receipts"

    plugin_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True
    )
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    samples: Mapped[int] = mapped_column(Integer)


class Credential(Base):
    """One secret: its kind, public facts, and the sealed secret payload."""

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    public: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Server(Base):
    """A host in the inventory: how to reach it, with which credential, and its pinned key."""

    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    username: Mapped[str] = mapped_column(String(128))
    credential: Mapped[str] = mapped_column(
        String(128), ForeignKey("credentials.name", ondelete="RESTRICT"), index=True
    )
    authorized_keys_file: Mapped[str] = mapped_column(String(1024), default=".ssh/authorized_keys")
    host_key: Mapped[str | None] = mapped_column(Text)
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(128))
    host_key_pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pending_host_key: Mapped[str | None] = mapped_column(Text)
    pending_host_key_fingerprint: Mapped[str | None] = mapped_column(String(128))
    pending_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CredentialAudit(Base):
    """Who or what used, revealed or changed which credential, when, from where."""

    __tablename__ = "credential_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    credential: Mapped[str | None] = mapped_column(String(128), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(255))
    success: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str] = mapped_column(Text, default="")


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
