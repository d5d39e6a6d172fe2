"""``INSERT ... ON CONFLICT`` for the database in use, loading only its dialect.

SQLAlchemy's ``postgresql`` dialect package imports every PostgreSQL driver
adapter it knows (about 2 MiB and 0.15 s); a hub on SQLite never needs it. Code
that upserts asks :func:`dialect_insert` for the ``insert`` of its session's
dialect instead of importing both at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["dialect_insert"]


def dialect_insert(
    dialect: str,
) -> Callable[[Any], postgresql.Insert] | Callable[[Any], sqlite.Insert]:
    """The ``insert`` construct of ``dialect`` (``"postgresql"``, else SQLite's)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
