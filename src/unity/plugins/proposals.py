"""Deciding on discovery's proposals: accept one (the plugin runs) or dismiss it.

Discovery reports proposals, never actions (``unity_sdk.Proposal``); nothing runs
until the owner accepts. Accepting adds the proposed plugin to the proposal's
host with its suggested config, the owner's overrides on top, and -- when the
proposal names a field that needs a secret -- a reference to a stored
credential in that field (``{"$credential": name}``, resolved only when the
plugin runs). A dismissed proposal stays dismissed: later scans that report
the same key do not reopen it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.hosts import HostLookupError, add_plugin, get_host
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginStateError
from unity.storage.db import Database
from unity.storage.models import DiscoveryProposal
from unity.storage.types import utcnow
from unity_sdk import CREDENTIAL_REF, ConfigError

__all__ = ["ACCEPTED", "DISMISSED", "GONE", "OPEN", "accept_proposal", "dismiss_proposal"]

log = logging.getLogger(__name__)

OPEN = "open"
ACCEPTED = "accepted"
DISMISSED = "dismissed"
GONE = "gone"


async def _proposal(session: AsyncSession, host_id: str, proposal_id: int) -> DiscoveryProposal:
    await get_host(session, host_id)
    row = await session.get(DiscoveryProposal, proposal_id)
    if row is None or row.host_id != host_id:
        raise HostLookupError(f"host {host_id!r} has no proposal {proposal_id}")
    return row


def proposed_config(
    proposal: DiscoveryProposal, overrides: Mapping[str, Any], credential: str | None
) -> dict[str, Any]:
    """The config accepting gives: suggested, overridden, credential referenced."""
    config = {**proposal.config, **overrides}
    if credential is not None:
        if proposal.credential is None:
            message = "this proposal needs no credential"
            raise ConfigError(message, [{"loc": ["credential"], "msg": message}])
        config[proposal.credential] = {CREDENTIAL_REF: credential}
    return config


async def accept_proposal(
    manager: PluginManager,
    host_id: str,
    proposal_id: int,
    *,
    overrides: Mapping[str, Any] | None = None,
    credential: str | None = None,
) -> str:
    """Run the proposed plugin on the proposal's host; returns its plugin id.

    Errors are those of :func:`unity.plugins.hosts.add_plugin` (a config the
    schema refuses, a credential that does not exist: 422, nothing written),
    plus ``PluginStateError`` (409) for a proposal already accepted.
    """
    async with manager.db.session() as session:
        proposal = await _proposal(session, host_id, proposal_id)
        if proposal.status == ACCEPTED:
            raise PluginStateError(
                f"proposal {proposal_id} was already accepted (plugin {proposal.plugin_id!r})"
            )
        plugin = proposal.plugin
        config = proposed_config(proposal, overrides or {}, credential)
    plugin_id = await add_plugin(manager, host_id, plugin, config)
    async with manager.db.session() as session:
        proposal = await _proposal(session, host_id, proposal_id)
        proposal.status = ACCEPTED
        proposal.decided_at = utcnow()
        proposal.plugin_id = plugin_id
    log.info("proposal %d on host %s accepted: %s runs", proposal_id, host_id, plugin_id)
    return plugin_id


async def dismiss_proposal(db: Database, host_id: str, proposal_id: int) -> None:
    """Dismiss a proposal for good (again: no change). 409 once it was accepted."""
    async with db.session() as session:
        proposal = await _proposal(session, host_id, proposal_id)
        if proposal.status == ACCEPTED:
            raise PluginStateError(
                f"proposal {proposal_id} was accepted (plugin {proposal.plugin_id!r}); "
                "remove that plugin instead"
            )
        if proposal.status != DISMISSED:
            proposal.status = DISMISSED
            proposal.decided_at = utcnow()
