"""Credentials store: sealed credentials, the server inventory, the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from unity.storage.types import JSONDocument, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("public", JSONDocument, nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("rotated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("name", name=op.f("uq_credentials_name")),
    )
    op.create_index(op.f("ix_credentials_expires_at"), "credentials", ["expires_at"])
    op.create_index(op.f("ix_credentials_key_id"), "credentials", ["key_id"])

    op.create_table(
        "servers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("credential", sa.String(128), nullable=False),
        sa.Column("authorized_keys_file", sa.String(1024), nullable=False),
        sa.Column("host_key", sa.Text(), nullable=True),
        sa.Column("host_key_fingerprint", sa.String(128), nullable=True),
        sa.Column("host_key_pinned_at", UTCDateTime(), nullable=True),
        sa.Column("pending_host_key", sa.Text(), nullable=True),
        sa.Column("pending_host_key_fingerprint", sa.String(128), nullable=True),
        sa.Column("pending_seen_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential"],
            ["credentials.name"],
            name=op.f("fk_servers_credential_credentials"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sa.UniqueConstraint("name", name=op.f("uq_servers_name")),
    )
    op.create_index(op.f("ix_servers_credential"), "servers", ["credential"])

    op.create_table(
        "credential_audit",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("credential", sa.String(128), nullable=True),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_audit")),
    )
    op.create_index(op.f("ix_credential_audit_at"), "credential_audit", ["at"])
    op.create_index(op.f("ix_credential_audit_credential"), "credential_audit", ["credential"])


def downgrade() -> None:
    op.drop_index(op.f("ix_credential_audit_credential"), table_name="credential_audit")
    op.drop_index(op.f("ix_credential_audit_at"), table_name="credential_audit")
    op.drop_table("credential_audit")
    op.drop_index(op.f("ix_servers_credential"), table_name="servers")
    op.drop_table("servers")
    op.drop_index(op.f("ix_credentials_key_id"), table_name="credentials")
    op.drop_index(op.f("ix_credentials_expires_at"), table_name="credentials")
    op.drop_table("credentials")
