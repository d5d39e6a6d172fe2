"""Rollup tiers: series, the 1-minute and 1-hour tables, and how far each is rolled.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import JSONDocument

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIERS = ("metric_rollups_1m", "metric_rollups_1h")


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_metric_series_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_series")),
        sa.UniqueConstraint(
            "plugin_id",
            "metric",
            "host",
            "item",
            name=op.f("uq_metric_series_plugin_id_metric_host_item"),
        ),
    )
    for table in TIERS:
        op.create_table(
            table,
            sa.Column("series_id", sa.Integer(), nullable=False),
            sa.Column("bucket", sa.BigInteger(), nullable=False),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("sum", sa.Float(), nullable=False),
            sa.Column("min", sa.Float(), nullable=False),
            sa.Column("max", sa.Float(), nullable=False),
            sa.Column("last", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(
                ["series_id"],
                ["metric_series.id"],
                name=op.f(f"fk_{table}_series_id_metric_series"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("series_id", "bucket", name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "metric_rollup_marks",
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.Column("raw_id", sa.BigInteger(), nullable=False),
        sa.Column("kept_from", sa.BigInteger(), nullable=False),
        sa.Column("metrics", JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_metric_rollup_marks_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plugin_id", "tier", name=op.f("pk_metric_rollup_marks")),
    )


def downgrade() -> None:
    op.drop_table("metric_rollup_marks")
    for table in reversed(TIERS):
        op.drop_table(table)
    op.drop_table("metric_series")
