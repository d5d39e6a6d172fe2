"""``unity db``: the database the hub uses, reached directly (no running hub needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import typer
from sqlalchemy.exc import SQLAlchemyError

from unity.cli.output import console, fail, load_settings
from unity.storage.db import Database

__all__ = ["app", "migrated_database", "shown_url"]

app = typer.Typer(help="The hub's database.", no_args_is_help=True)


def shown_url(db: Database) -> str:
    """The database URL with any password replaced by ``***``."""
    return db.url.render_as_string(hide_password=True)


@asynccontextmanager
async def migrated_database() -> AsyncIterator[Database]:
    """The settings' database, upgraded to the current schema; database errors exit 1."""
    url = load_settings().effective_database_url
    try:
        db = Database(url)
    except (SQLAlchemyError, ImportError) as exc:
        fail(f"cannot use the database URL: {exc}")
    try:
        await db.upgrade()
        yield db
    except (SQLAlchemyError, OSError) as exc:
        fail(f"database error on {shown_url(db)}: {exc}")
    finally:
        await db.dispose()


@app.command()
def upgrade() -> None:
    """Apply the schema migrations (the hub also does this when it starts)."""

    async def run() -> str:
        async with migrated_database() as db:
            return shown_url(db)

    url = asyncio.run(run())
    console().print(f"Database {url} is up to date.", soft_wrap=True)
