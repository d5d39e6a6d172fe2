"""Leases: work exactly one of several hubs on one database does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from unity.storage.models._base import Base
from unity.storage.types import UTCDateTime

__all__ = ["HubLease"]


class HubLease(Base):
    """Work that exactly one of several hubs on one database does, and who holds it.

    A hub claims a lease (``plugin:<id>`` for a plugin's scheduled runs,
    ``retention`` for the retention pass) when it is free or expired, renews it
    while it does the work, and loses it to the others when it stops renewing.
    Expiry is judged by the database's clock, never a hub's.
    """

    __tablename__ = "hub_leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
