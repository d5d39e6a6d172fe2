"""Agent hosts, their plugin instances, documents and proposals, written straight
through storage: the state the agent protocol leaves behind, for tests of what
the hub shows and does with hosts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from unity.plugins.hosts import catalogue
from unity.storage import metrics as metric_store
from unity.storage.db import Database
from unity.storage.models import AgentKey, DiscoveryProposal, Host, Plugin
from unity.storage.registry import metadata_document
from unity.storage.types import utcnow
from unity_sdk import instance_id


def platform(hostname: str, **extra: Any) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "os": "Linux 6.1.0-18-amd64",
        "distribution": "Debian GNU/Linux 12 (bookworm)",
        "architecture": "x86_64",
        "cpu_count": 4,
        "memory_bytes": 8 * 1024**3,
        "agent_version": "0.1.0",
        "python": "3.11.2",
        **extra,
    }


async def add_agent_host(
    db: Database,
    host_id: str,
    *,
    hostname: str | None = None,
    last_seen_at: datetime | None = None,
    poll_seconds: float = 10.0,
    status: dict[str, Any] | None = None,
    with_key: bool = True,
    never_seen: bool = False,
) -> None:
    """An agent's host as a join and polls leave it (and its agent's key)."""
    name = hostname or f"{host_id}.lan"
    async with db.session() as session:
        session.add(
            Host(
                id=host_id,
                kind="agent",
                hostname=name,
                platform=platform(name),
                status=status or {},
                poll_seconds=poll_seconds,
                last_seen_at=None if never_seen else (last_seen_at or utcnow()),
            )
        )
        await session.flush()
        if with_key:
            session.add(AgentKey(id=f"k{host_id}"[:16], host_id=host_id, secret_hash="0" * 64))


async def add_instance(
    db: Database,
    plugin: str,
    host_id: str,
    *,
    config: dict[str, Any] | None = None,
    enabled: bool = True,
    state: str = "healthy",
    health: str = "healthy",
    message: str = "",
    last_seen_at: datetime | None = None,
) -> str:
    """A catalogue plugin's instance on the host, as if it had reported."""
    metadata = catalogue()[plugin]
    plugin_id = instance_id(plugin, host_id)
    async with db.session() as session:
        session.add(
            Plugin(
                id=plugin_id,
                name=metadata.name,
                version=metadata.version,
                description=metadata.description,
                author=metadata.author,
                category=metadata.category.value,
                plugin_metadata=metadata_document(metadata),
                enabled=enabled,
                external=True,
                config=config or {},
                state=state,
                health_status=health,
                health_message=message,
                last_seen_at=last_seen_at or utcnow(),
                host_id=host_id,
                plugin_type=plugin,
            )
        )
    return plugin_id


async def add_documents(
    db: Database,
    plugin_id: str,
    host: str,
    documents: list[dict[str, Any]],
    *,
    every: float = 60.0,
    newest: datetime | None = None,
) -> None:
    """Documents of a plugin, ``every`` seconds apart, the last at ``newest``."""
    end = newest or utcnow()
    samples = [
        metric_store.MetricSample(
            plugin_id, host, end - timedelta(seconds=every * (len(documents) - 1 - i)), doc
        )
        for i, doc in enumerate(documents)
    ]
    async with db.session() as session:
        await metric_store.insert_samples(session, samples)


def system_document(cpu: float, memory: float) -> dict[str, Any]:
    return {"cpu": {"percent": cpu, "load": {"avg1": 0.5}}, "memory": {"percent": memory}}


def disk_document(root: float, other: float) -> dict[str, Any]:
    return {
        "partitions": {
            "/": {"device": "/dev/sda1", "fstype": "ext4", "percent": root},
            "/srv": {"device": "/dev/sdb1", "fstype": "ext4", "percent": other},
        },
        "max_used_percent": max(root, other),
    }


async def add_proposal(
    db: Database,
    host_id: str,
    key: str,
    plugin: str,
    *,
    title: str | None = None,
    config: dict[str, Any] | None = None,
    credential: str | None = None,
    status: str = "open",
) -> int:
    async with db.session() as session:
        row = DiscoveryProposal(
            host_id=host_id,
            key=key,
            plugin=plugin,
            title=title or f"{plugin} found ({key})",
            reason=f"seen listening: {key}",
            config=config or {},
            credential=credential,
            status=status,
        )
        session.add(row)
        await session.flush()
        return row.id
