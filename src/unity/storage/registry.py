"""Queries over the plugin registry (the ``plugins`` table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.dialects import dialect_insert
from unity.storage.models import Plugin
from unity.storage.types import utcnow
from unity_sdk import PluginMetadata

__all__ = ["get_plugin", "list_plugins", "metadata_document", "settings_digests", "sync_plugin"]


def metadata_document(metadata: PluginMetadata) -> dict[str, Any]:
    """The metadata as stored and served: JSON, with the config schema as JSON Schema."""
    document = metadata.model_dump(mode="json", exclude={"config_schema"})
    document["config_schema"] = metadata.config_json_schema()
    return document


async def sync_plugin(
    session: AsyncSession,
    *,
    metadata: PluginMetadata,
    external: bool = False,
    enable_if_new: bool = False,
) -> tuple[Plugin, bool]:
    """Insert the plugin if new, else refresh its metadata. Returns (row, created).

    The row is locked for the rest of the transaction. Hubs starting at once
    on one PostgreSQL may both find it missing: the insert does nothing when
    another hub's came first, and that row is taken instead.
    """
    document = metadata_document(metadata)
    row = await session.get(Plugin, metadata.id, with_for_update=True)
    created = False
    if row is None:
        insert = dialect_insert(session.get_bind().dialect.name)
        inserted = await session.execute(
            insert(Plugin)
            .values(
                id=metadata.id,
                name=metadata.name,
                version=metadata.version,
                category=metadata.category.value,
                plugin_metadata=document,
                enabled=enable_if_new,
                external=external,
                config={},
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Plugin.id)
        )
        created = inserted.first() is not None
        row = await session.get(Plugin, metadata.id, with_for_update=True, populate_existing=True)
        assert row is not None
    row.name = metadata.name
    row.version = metadata.version
    row.description = metadata.description
    row.author = metadata.author
    row.category = metadata.category.value
    if row.plugin_metadata != document:
        row.plugin_metadata = document
    row.external = external
    await session.flush()
    return row, created


async def get_plugin(session: AsyncSession, plugin_id: str) -> Plugin | None:
    return await session.get(Plugin, plugin_id)


async def list_plugins(
    session: AsyncSession,
    *,
    category: str | None = None,
    enabled: bool | None = None,
    external: bool | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Plugin]:
    stmt = select(Plugin).order_by(Plugin.id).limit(limit)
    if category is not None:
        stmt = stmt.where(Plugin.category == category)
    if enabled is not None:
        stmt = stmt.where(Plugin.enabled == enabled)
    if external is not None:
        stmt = stmt.where(Plugin.external == external)
    if after is not None:
        stmt = stmt.where(Plugin.id > after)
    return list((await session.scalars(stmt)).all())


def touch(row: Plugin, when: datetime | None = None) -> None:
    row.updated_at = when or utcnow()


async def settings_digests(session: AsyncSession, ids: list[str]) -> dict[str, tuple[bool, str]]:
    """``{id: (enabled, digest of the stored config)}``: what hubs poll to see a change
    another hub made, without reading the configs themselves (PostgreSQL)."""
    rows = await session.execute(
        select(Plugin.id, Plugin.enabled, func.md5(cast(Plugin.config, Text))).where(
            Plugin.id.in_(ids)
        )
    )
    return {plugin_id: (enabled, digest) for plugin_id, enabled, digest in rows.all()}
