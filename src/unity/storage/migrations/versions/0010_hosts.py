"""Hosts and agents: the machines agents run on, their keys, plugin instances
per host and discovery proposals.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import JSONDocument, UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("platform", JSONDocument, nullable=False),
        sa.Column("status", JSONDocument, nullable=False),
        sa.Column("enrollment_id", sa.String(16), nullable=True),
        sa.Column("poll_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
    )
    op.create_table(
        "agent_keys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("host_id", sa.String(24), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("enrollment_token_id", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_agent_keys_host_id_hosts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_keys")),
    )
    op.create_index(op.f("ix_agent_keys_host_id"), "agent_keys", ["host_id"])
    op.create_table(
        "discovery_proposals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host_id", sa.String(24), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("config", JSONDocument, nullable=False),
        sa.Column("credential", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("plugin_id", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_discovery_proposals_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discovery_proposals")),
        sa.UniqueConstraint("host_id", "key", name=op.f("uq_discovery_proposals_host_id_key")),
    )
    op.create_index(op.f("ix_discovery_proposals_host_id"), "discovery_proposals", ["host_id"])
    with op.batch_alter_table("plugins") as batch:
        batch.add_column(sa.Column("host_id", sa.String(24), nullable=True))
        batch.add_column(sa.Column("plugin_type", sa.String(64), nullable=True))
        batch.create_index(batch.f("ix_plugins_host_id"), ["host_id"])
        batch.create_foreign_key(
            batch.f("fk_plugins_host_id_hosts"), "hosts", ["host_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("plugins") as batch:
        batch.drop_constraint(batch.f("fk_plugins_host_id_hosts"), type_="foreignkey")
        batch.drop_index(batch.f("ix_plugins_host_id"))
        batch.drop_column("plugin_type")
        batch.drop_column("host_id")
    op.drop_index(op.f("ix_discovery_proposals_host_id"), table_name="discovery_proposals")
    op.drop_table("discovery_proposals")
    op.drop_index(op.f("ix_agent_keys_host_id"), table_name="agent_keys")
    op.drop_table("agent_keys")
    op.drop_table("hosts")
