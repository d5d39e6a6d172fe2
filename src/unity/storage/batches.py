"""What an external plugin's metric batch is checked against, read on a Core connection.

A batch is the hub's busiest write: a receipt, the samples, the latest
values, an execution row and the plugin's row. The group-commit writer
(:mod:`unity.storage.writer`) writes it with many others in one transaction,
locking the plugin's row and reading it as a :class:`PushedState`; here is
the lookup before that (:func:`read_plugin`, a prebuilt Core statement, no
ORM objects).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from unity.storage.models import Plugin, table_of

__all__ = ["PluginRow", "PushedState", "read_plugin"]


_PLUGINS = table_of(Plugin)

_READ = select(_PLUGINS.c.external, _PLUGINS.c["metadata"], _PLUGINS.c.host_id).where(
    _PLUGINS.c.id == bindparam("plugin_id")
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


async def read_plugin(connection: AsyncConnection, plugin_id: str) -> PluginRow | None:
    row = (await connection.execute(_READ, {"plugin_id": plugin_id})).first()
    return None if row is None else PluginRow(bool(row[0]), row[1], row[2])
