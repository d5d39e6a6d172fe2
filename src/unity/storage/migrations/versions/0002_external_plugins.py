"""External plugins: enrollment tokens, per-plugin API keys, batch receipts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import JSONDocument, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plugins") as batch:
        batch.add_column(sa.Column("health_details", JSONDocument, nullable=True))
        batch.add_column(sa.Column("last_seen_at", UTCDateTime(), nullable=True))

    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
    )
    op.create_table(
        "plugin_api_keys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("enrollment_token_id", sa.String(16), nullable=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_plugin_api_keys_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_api_keys")),
    )
    op.create_index(op.f("ix_plugin_api_keys_plugin_id"), "plugin_api_keys", ["plugin_id"])
    op.create_table(
        "batch_receipts",
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_batch_receipts_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plugin_id", "batch_id", name=op.f("pk_batch_receipts")),
    )
    op.create_index(op.f("ix_batch_receipts_received_at"), "batch_receipts", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_batch_receipts_received_at"), table_name="batch_receipts")
    op.drop_table("batch_receipts")
    op.drop_index(op.f("ix_plugin_api_keys_plugin_id"), table_name="plugin_api_keys")
    op.drop_table("plugin_api_keys")
    op.drop_table("enrollment_tokens")
    with op.batch_alter_table("plugins") as batch:
        batch.drop_column("last_seen_at")
        batch.drop_column("health_details")
