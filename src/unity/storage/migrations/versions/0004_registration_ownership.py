"""External plugins: the enrollment that owns each id, and takeover tokens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("plugins") as batch:
        batch.add_column(sa.Column("owner_enrollment_id", sa.String(16), nullable=True))
    with op.batch_alter_table("enrollment_tokens") as batch:
        batch.add_column(sa.Column("takeover_plugin_id", sa.String(64), nullable=True))
    # An id already registered belongs to the enrollment token of its first key.
    plugins = sa.table(
        "plugins",
        sa.column("id", sa.String),
        sa.column("external", sa.Boolean),
        sa.column("owner_enrollment_id", sa.String),
    )
    keys = sa.table(
        "plugin_api_keys",
        sa.column("plugin_id", sa.String),
        sa.column("enrollment_token_id", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    first_key = (
        sa.select(keys.c.enrollment_token_id)
        .where(keys.c.plugin_id == plugins.c.id, keys.c.enrollment_token_id.is_not(None))
        .order_by(keys.c.created_at)
        .limit(1)
        .scalar_subquery()
    )
    op.execute(
        plugins.update().where(plugins.c.external.is_(True)).values(owner_enrollment_id=first_key)
    )


def downgrade() -> None:
    with op.batch_alter_table("enrollment_tokens") as batch:
        batch.drop_column("takeover_plugin_id")
    with op.batch_alter_table("plugins") as batch:
        batch.drop_column("owner_enrollment_id")
