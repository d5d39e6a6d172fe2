"""Plugin events: every change of a plugin's state, with why.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import UTCDateTime

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plugin_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("plugin_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("previous", sa.String(16), nullable=False),
        sa.Column("current", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["plugins.id"],
            name=op.f("fk_plugin_events_plugin_id_plugins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugin_events")),
    )
    op.create_index("ix_plugin_events_plugin_at", "plugin_events", ["plugin_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_plugin_events_plugin_at", table_name="plugin_events")
    op.drop_table("plugin_events")
