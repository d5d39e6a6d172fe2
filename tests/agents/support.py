"""Helpers for the agent API tests: enrolling, joining, reporting and reading rows.

Everything goes through the real app's routes; the database is read directly
only to check what an answer cannot show (hashes, rows that must not exist),
and written directly only where the admin routes belong to another part of
the hub (a proposal's decision, an instance added to a host).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from unity.storage.models import AgentKey, EnrollmentToken, Host, Plugin
from unity.storage.registry import metadata_document
from unity_catalogue import BUILTIN_PLUGINS
from unity_sdk import AGENT_API_PATH, PluginMetadata, instance_id

API = "/api/plugins/v2"
AGENTS = AGENT_API_PATH
DEFAULT_PLUGINS = ["disk-monitor", "network-monitor", "process-monitor", "system-info"]


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def platform(hostname: str) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "os": "Linux 6.1.0-18-amd64",
        "distribution": "Debian 12",
        "architecture": "x86_64",
        "cpu_count": 4,
        "memory_bytes": 8 * 2**30,
        "agent_version": "0.1.0",
        "python": "3.11.2",
    }


async def enroll(client: httpx.AsyncClient, **body: Any) -> str:
    """A new enrollment token (through the admin API)."""
    response = await client.post("/api/enrollment-tokens", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def join(
    anon: httpx.AsyncClient,
    token: str,
    hostname: str,
    *,
    host_id: str | None = None,
    key_secret: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"platform": platform(hostname)}
    if host_id is not None:
        body["host_id"] = host_id
    if key_secret is not None:
        body["key_secret"] = key_secret
    return await anon.post(f"{AGENTS}/join", json=body, headers=auth(token))


async def joined(client: httpx.AsyncClient, anon: httpx.AsyncClient, hostname: str) -> str:
    """Join a host with a fresh token; its agent key."""
    answer = await join(anon, await enroll(client), hostname)
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["api_key"]
    return key


def catalogue_metadata(plugin: str) -> PluginMetadata:
    for cls in BUILTIN_PLUGINS:
        metadata = cls().get_metadata()
        if metadata.id == plugin:
            return metadata
    raise KeyError(plugin)


async def add_instance(app: FastAPI, plugin: str, host_id: str) -> str:
    """Put catalogue plugin ``plugin`` on a host (the hosts API's job, not under test here)."""
    metadata = catalogue_metadata(plugin)
    plugin_id = instance_id(plugin, host_id)
    async with app.state.db.session() as session:
        session.add(
            Plugin(
                id=plugin_id,
                name=metadata.name,
                version=metadata.version,
                category=metadata.category.value,
                plugin_metadata=metadata_document(metadata),
                enabled=True,
                external=True,
                config={},
                host_id=host_id,
                plugin_type=plugin,
            )
        )
    return plugin_id


def sample(host: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"host": host, "timestamp": datetime.now(UTC).isoformat(), "data": data}


async def counts(app: FastAPI) -> dict[str, int]:
    """How many hosts, instances and agent keys exist, and enrollment uses spent."""
    async with app.state.db.session() as session:
        return {
            "hosts": await session.scalar(select(func.count()).select_from(Host)) or 0,
            "instances": await session.scalar(
                select(func.count()).select_from(Plugin).where(Plugin.host_id.is_not(None))
            )
            or 0,
            "keys": await session.scalar(select(func.count()).select_from(AgentKey)) or 0,
            "uses": await session.scalar(select(func.coalesce(func.sum(EnrollmentToken.uses), 0)))
            or 0,
        }
