"""The statements of an external plugin's metric batch, on a Core connection.

A batch is the hub's busiest write: a receipt, the samples, the latest
values, an execution row and the plugin's row, in one transaction. These
functions run prebuilt Core statements (SQLAlchemy caches their compiled
form), with no ORM objects; the samples and the execution row are written by
:mod:`unity.storage.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from unity.storage.dialects import dialect_insert
from unity.storage.models import BatchReceipt, Plugin

__all__ = ["PluginRow", "PushedState", "claim_receipt", "lock_plugin", "read_plugin", "record_push"]


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_PLUGINS = _table(Plugin)
_RECEIPTS = _table(BatchReceipt)

_READ = select(_PLUGINS.c.external, _PLUGINS.c["metadata"], _PLUGINS.c.host_id).where(
    _PLUGINS.c.id == bindparam("plugin_id")
)
# FOR NO KEY UPDATE on PostgreSQL: batches of one plugin take turns reading its
# state, yet the key-share locks of their receipts' foreign keys never block it.
_LOCK = (
    select(
        _PLUGINS.c.enabled,
        _PLUGINS.c.state,
        _PLUGINS.c.health_status,
        _PLUGINS.c.last_seen_at,
        _PLUGINS.c.config,
        _PLUGINS.c.external,
        _PLUGINS.c["metadata"],
        _PLUGINS.c.host_id,
    )
    .where(_PLUGINS.c.id == bindparam("plugin_id"))
    .with_for_update(key_share=True)
)
_PUSH = (
    update(_PLUGINS)
    .where(_PLUGINS.c.id == bindparam("plugin_id"))
    .values(
        last_seen_at=bindparam("at"),
        last_run_at=bindparam("newest"),
        last_success_at=bindparam("at"),
        run_count=_PLUGINS.c.run_count + 1,
        state=bindparam("run_state"),
        consecutive_failures=0,
        updated_at=bindparam("at"),
    )
)


@dataclass(frozen=True)
class PluginRow:
    """What a batch is checked against: whether the id is external, its metadata, and
    (for a plugin instance on an agent's host) the host its samples are about."""

    external: bool
    metadata: dict[str, Any]
    host_id: str | None = None


@dataclass(frozen=True)
class PushedState:
    """The columns a plugin's state is derived from, as the batch found them,
    and what the batch was checked against."""

    enabled: bool
    state: str
    health_status: str
    last_seen_at: datetime | None
    config: dict[str, Any]
    plugin: PluginRow


@cache
def _claim(dialect: str) -> Insert:
    return dialect_insert(dialect)(_RECEIPTS).on_conflict_do_nothing()


async def read_plugin(connection: AsyncConnection, plugin_id: str) -> PluginRow | None:
    row = (await connection.execute(_READ, {"plugin_id": plugin_id})).first()
    return None if row is None else PluginRow(bool(row[0]), row[1], row[2])


async def claim_receipt(
    connection: AsyncConnection,
    *,
    plugin_id: str,
    batch_id: str,
    received_at: datetime,
    samples: int,
) -> bool:
    """Store the batch's receipt; False when the batch id was stored before."""
    result = await connection.execute(
        _claim(connection.dialect.name),
        {
            "plugin_id": plugin_id,
            "batch_id": batch_id,
            "received_at": received_at,
            "samples": samples,
        },
    )
    return bool(result.rowcount == 1)


async def lock_plugin(connection: AsyncConnection, plugin_id: str) -> PushedState | None:
    """The plugin's state columns, locked to the end of the transaction (PostgreSQL)."""
    row = (await connection.execute(_LOCK, {"plugin_id": plugin_id})).first()
    if row is None:
        return None
    return PushedState(
        bool(row[0]), row[1], row[2], row[3], row[4] or {}, PluginRow(bool(row[5]), row[6], row[7])
    )


async def record_push(
    connection: AsyncConnection,
    *,
    plugin_id: str,
    at: datetime,
    last_run_at: datetime,
    state: str,
) -> None:
    """The plugin reported successfully at ``at``, its newest sample dated ``last_run_at``."""
    await connection.execute(
        _PUSH, {"plugin_id": plugin_id, "at": at, "newest": last_run_at, "run_state": state}
    )
