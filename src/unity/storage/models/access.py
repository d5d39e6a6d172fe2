"""Hub tokens, enrollment tokens, plugin keys and batch receipts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from unity.storage.models._base import Base
from unity.storage.types import UTCDateTime, utcnow

__all__ = ["ApiToken", "BatchReceipt", "EnrollmentToken", "PluginApiKey"]


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
