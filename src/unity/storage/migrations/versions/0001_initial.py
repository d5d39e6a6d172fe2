"""Initial schema: plugin registry, metrics, executions, hub tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import JSONDocument, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("metadata", JSONDocument, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("config", JSONDocument, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("health_status", sa.String(16), nullable=False),
        sa.Column("health_message", sa.Text(), nullable=False),
        sa.Column("health_checked_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugins")),
    )
    op.create_index(op.f("ix_plugins_category"), "plugins", ["category"])

    op.create_table(
        "plugin_metrics",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("data", JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_plugin_metrics_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_metrics")),
    )
    op.create_index("ix_plugin_metrics_plugin_time", "plugin_metrics", ["plugin_id", "timestamp"])
    op.create_index(
        "ix_plugin_metrics_plugin_host_time", "plugin_metrics", ["plugin_id", "host", "timestamp"]
    )

    op.create_table(
        "plugin_latest",
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("data", JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_plugin_latest_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plugin_id", "host", name=op.f("pk_plugin_latest")),
    )

    op.create_table(
        "plugin_executions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metrics_count", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_plugin_executions_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_executions")),
    )
    op.create_index(
        "ix_plugin_executions_plugin_started", "plugin_executions", ["plugin_id", "started_at"]
    )

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_plugin_executions_plugin_started", table_name="plugin_executions")
    op.drop_table("plugin_executions")
    op.drop_table("plugin_latest")
    op.drop_index("ix_plugin_metrics_plugin_host_time", table_name="plugin_metrics")
    op.drop_index("ix_plugin_metrics_plugin_time", table_name="plugin_metrics")
    op.drop_table("plugin_metrics")
    op.drop_index(op.f("ix_plugins_category"), table_name="plugins")
    op.drop_table("plugins")
