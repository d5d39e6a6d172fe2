"""The shipped migrations produce exactly the models' schema, both ways."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from unity.storage.db import Database, alembic_config
from unity.storage.models import Base


async def test_migrations_match_models_and_downgrade(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.engine.connect() as conn:

            def diff(sync: Connection) -> list[object]:
                context = MigrationContext.configure(sync, opts={"compare_type": True})
                return list(compare_metadata(context, Base.metadata))

            assert await conn.run_sync(diff) == []

        def downgrade(sync: Connection) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = sync
            command.downgrade(cfg, "base")

        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await db.upgrade()
    finally:
        await db.dispose()
