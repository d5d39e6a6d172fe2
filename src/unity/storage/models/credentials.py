"""Sealed credentials, the server inventory and the credential audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from unity.storage.models._base import Base, BigId
from unity.storage.types import JSONDocument, UTCDateTime, utcnow

__all__ = ["Credential", "CredentialAudit", "Server"]


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
