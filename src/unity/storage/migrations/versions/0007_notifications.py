"""Notifications: channels, the outbox hubs deliver from, and the delivery log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import JSONDocument, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("credential", sa.String(128), nullable=False),
        sa.Column("min_severity", sa.String(16), nullable=False),
        sa.Column("plugins", JSONDocument, nullable=False),
        sa.Column("hosts", JSONDocument, nullable=False),
        sa.Column("labels", JSONDocument, nullable=False),
        sa.Column("rate_limit", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential"],
            ["credentials.name"],
            name=op.f("fk_notification_channels_credential_credentials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_channels_name")),
    )
    op.create_index(
        op.f("ix_notification_channels_credential"), "notification_channels", ["credential"]
    )

    op.create_table(
        "notification_outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("notice", JSONDocument, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_notification_outbox_channel_id_notification_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
    )
    op.create_index("ix_notification_outbox_state_due", "notification_outbox", ["state", "due_at"])
    op.create_index(
        "ix_notification_outbox_channel_group", "notification_outbox", ["channel_id", "group_key"]
    )
    op.create_index(op.f("ix_notification_outbox_claim"), "notification_outbox", ["claim"])

    op.create_table(
        "notification_deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("notices", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("hub", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_notification_deliveries_channel_id_notification_channels"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
    )
    op.create_index(op.f("ix_notification_deliveries_at"), "notification_deliveries", ["at"])
    op.create_index(
        op.f("ix_notification_deliveries_channel_id"), "notification_deliveries", ["channel_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_notification_deliveries_channel_id"), "notification_deliveries")
    op.drop_index(op.f("ix_notification_deliveries_at"), "notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index(op.f("ix_notification_outbox_claim"), "notification_outbox")
    op.drop_index("ix_notification_outbox_channel_group", "notification_outbox")
    op.drop_index("ix_notification_outbox_state_due", "notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_index(op.f("ix_notification_channels_credential"), "notification_channels")
    op.drop_table("notification_channels")
