"""What runs on an agent's host: its assignments, and their revision.

The agent polls ``GET /api/agents/v1/assignments``: every plugin instance of
its host with the config it runs with (the catalogue plugin's defaults filled
in, credential references resolved for this agent alone, each resolution
audited). The revision, which the route sends as the ``ETag``, is computed
from the stored rows without opening a secret, so an unchanged answer (304)
costs two small queries and decrypts nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from unity.credentials import CredentialError
from unity.plugins.agents import AgentGoneError
from unity.plugins.external import report_interval
from unity.plugins.manager import PluginManager
from unity.storage.db import Database
from unity.storage.models import Credential, Host, Plugin
from unity_sdk import (
    Assignment,
    Assignments,
    ConfigError,
    PluginMetadata,
    credential_reference,
    plugin_view,
    secret_fields,
)

__all__ = ["Plan", "assignments", "plan"]

log = logging.getLogger(__name__)

# Assignment.interval's bound.
_MAX_INTERVAL = 86400.0


@dataclass(frozen=True)
class Plan:
    """What runs on a host, as stored, and its ``revision``: a digest of everything
    the answer is made of. Secrets enter it only sealed, or as the stored
    credential's id and last change, never as values: the revision is no secret."""

    host_id: str
    poll_seconds: float
    rows: list[Plugin]
    revision: str


async def plan(db: Database, host_id: str) -> Plan:
    """The host's instances and their revision (no secret opened); ``AgentGoneError``
    when the host is gone."""
    async with db.session() as session:
        host = await session.get(Host, host_id)
        if host is None:
            raise AgentGoneError(f"host {host_id!r} was removed from the hub; join again")
        rows = list(
            await session.scalars(
                select(Plugin).where(Plugin.host_id == host_id).order_by(Plugin.id)
            )
        )
        names = {
            name
            for row in rows
            for name in map(credential_reference, (row.config or {}).values())
            if name is not None
        }
        stamps: dict[str, list[str]] = {}
        if names:
            found = await session.execute(
                select(Credential.name, Credential.id, Credential.updated_at).where(
                    Credential.name.in_(names)
                )
            )
            stamps = {name: [cid, at.isoformat()] for name, cid, at in found}
    document = {
        "host": host_id,
        "poll": host.poll_seconds,
        "instances": [
            [r.id, r.plugin_type, r.enabled, r.config or {}, r.plugin_metadata] for r in rows
        ],
        "credentials": stamps,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    revision = hashlib.sha256(encoded.encode()).hexdigest()[:32]
    return Plan(host_id, poll_period(host.poll_seconds, rows), rows, revision)


def poll_period(poll_seconds: float, rows: list[Plugin]) -> float:
    """How often the agent asks again: its host's period, but never longer than the
    shortest interval of its enabled instances (at least a second), so a change
    made in the hub reaches the agent within one interval of the plugin."""
    intervals = [report_interval(r.config, r.plugin_metadata) for r in rows if r.enabled]
    return max(1.0, min([poll_seconds, *intervals]))


async def assignments(
    manager: PluginManager, planned: Plan, *, source: str | None = None
) -> Assignments:
    """The answer to the agent of ``planned.host_id``: every instance with the config
    it runs with. Credential references of enabled instances are resolved (audited
    as used by ``agent:<host_id>`` from ``source``); a disabled instance gets no
    secret at all. An instance whose config cannot be completed (a credential
    that is gone) is sent disabled, and logged."""
    instances = []
    for row in planned.rows:
        try:
            metadata = PluginMetadata.model_validate(row.plugin_metadata)
        except ValidationError:
            log.warning("instance %s: its stored metadata is not valid; not assigned", row.id)
            continue
        enabled = row.enabled
        try:
            config = await _config(manager, row, metadata, planned.host_id, enabled, source)
        except (ConfigError, CredentialError) as exc:
            log.warning("instance %s sent disabled: %s", row.id, exc)
            config, enabled = _without_secrets(metadata, row), False
        instances.append(
            Assignment(
                instance_id=row.id,
                plugin=row.plugin_type or metadata.id,
                config=config,
                interval=min(report_interval(row.config, row.plugin_metadata), _MAX_INTERVAL),
                timeout=metadata.timeout,
                enabled=enabled,
            )
        )
    return Assignments(
        host_id=planned.host_id,
        revision=planned.revision,
        poll_seconds=planned.poll_seconds,
        instances=instances,
    )


async def _config(
    manager: PluginManager,
    row: Plugin,
    metadata: PluginMetadata,
    host_id: str,
    enabled: bool,
    source: str | None,
) -> dict[str, Any]:
    if not enabled:
        return _without_secrets(metadata, row)
    opened = manager.vault.opened(row.id, row.config)
    resolved = await manager.links.resolve(
        metadata, opened, actor=f"agent:{host_id}", source=source, plugin_id=row.id
    )
    return plugin_view(metadata, resolved)


def _without_secrets(metadata: PluginMetadata, row: Plugin) -> dict[str, Any]:
    secrets = secret_fields(metadata)
    kept = {k: v for k, v in (row.config or {}).items() if k not in secrets}
    return plugin_view(metadata, kept)
