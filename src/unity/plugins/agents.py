"""The hub's side of the agent protocol: joins, assignments, status and proposals.

An agent is one process per host running catalogue plugins there
(``unity-agent``). It joins once with an enrollment token (:func:`join`): the
hub creates its ``hosts`` row, the four psutil plugins as *instances* on it and
its key. Joining again with the same host id (a lost identity, a new hub
certificate) replaces the key and keeps the rest. A plugin instance is an
external plugin row ``"{plugin}@{host_id}"`` (``host_id`` and ``plugin_type``
set, the catalogue plugin's metadata, whose ``id`` stays the catalogue id), so
its samples and health come in through the external-plugin paths and it has
state, history, events, stale detection and alert rules like any external
plugin.

From then on the agent polls its assignments (:mod:`unity.plugins.assignments`:
what runs on its host, with credential references resolved for it alone),
reports its own state (:func:`record_status`) and what discovery found
(:func:`record_proposals`). Every authenticated call is a sign of life
(:func:`heartbeat`).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from unity.auth import agents as agent_auth
from unity.auth import external as external_auth
from unity.auth.keys import IssuedSecret
from unity.plugins.external import (
    EnrollmentRefusedError,
    EnrollmentScopeError,
)
from unity.plugins.hosts import catalogue, instance_row
from unity.plugins.manager import PluginManager
from unity.plugins.runtime import PluginStateError
from unity.storage.db import Database
from unity.storage.models import DiscoveryProposal, EnrollmentToken, Host, Plugin
from unity.storage.types import utcnow
from unity_sdk import (
    AgentStatus,
    JoinRequest,
    JoinResponse,
    PluginMetadata,
    PluginState,
    Proposal,
    StatusAccepted,
    host_id_for,
)

__all__ = [
    "DEFAULT_PLUGINS",
    "HEARTBEAT_SECONDS",
    "AgentGoneError",
    "DuplicateProposalError",
    "HostTakenError",
    "heartbeat",
    "join",
    "record_proposals",
    "record_status",
]

log = logging.getLogger(__name__)

# What a new agent's host runs from the start: the hub's own local four.
DEFAULT_PLUGINS = ("system-info", "process-monitor", "disk-monitor", "network-monitor")
# An agent's calls refresh its host's last_seen_at at most this often (per hub, all
# hosts heard from in one write).
HEARTBEAT_SECONDS = 5.0
_AGENT = "agent"
# discovery_proposals.status
_OPEN, _GONE = "open", "gone"


class HostTakenError(PluginStateError):
    """The host id is the hub's own machine, or a concurrent join took it (409)."""


class AgentGoneError(LookupError):
    """The agent's host was removed from the hub (its key is about to stop working)."""


class DuplicateProposalError(ValueError):
    """One report names a proposal key twice; ``index`` is the second one's."""

    def __init__(self, key: str, index: int) -> None:
        super().__init__(f"proposal key {key!r} appears more than once in the report")
        self.key = key
        self.index = index


# -- the catalogue ---------------------------------------------------------------------


# -- join ------------------------------------------------------------------------------

_REFUSED = "enrollment token is invalid, expired, revoked or used up"


async def join(manager: PluginManager, request: JoinRequest, enrollment_token: str) -> JoinResponse:
    """Trade an enrollment token for an agent key; create the host and its default
    instances.

    One transaction: a refused join (``EnrollmentRefusedError``,
    ``EnrollmentScopeError``, ``HostTakenError``) writes nothing and spends no
    use of the token. A retry with the same token, host id and ``key_secret``
    gets the same key back and spends nothing. A join naming an agent host that
    exists replaces its key (:func:`_rejoin`); the hub's own host id is refused."""
    host_id = request.host_id or host_id_for(request.platform.hostname)
    known = catalogue()
    defaults = [known[p] for p in DEFAULT_PLUGINS if p in known]
    try:
        async with manager.db.writer() as session:
            return await _join(
                session,
                request,
                host_id,
                enrollment_token,
                defaults,
                manager.settings.agent_poll_seconds,
            )
    except IntegrityError as exc:
        # PostgreSQL: another join inserted the same host id concurrently.
        raise HostTakenError(f"host id {host_id!r} was taken by a concurrent join; retry") from exc


async def _join(
    session: AsyncSession,
    request: JoinRequest,
    host_id: str,
    value: str,
    defaults: Sequence[PluginMetadata],
    poll_seconds: float,
) -> JoinResponse:
    enrollment = await external_auth.authenticate_enrollment(session, value)
    if enrollment is None:
        raise EnrollmentRefusedError(_REFUSED)
    if enrollment.takeover_plugin_id is not None:
        raise EnrollmentScopeError(
            f"this enrollment token only takes over plugin {enrollment.takeover_plugin_id!r}; "
            "an agent joins with a plain enrollment token"
        )
    repeated = await _repeated(session, host_id, enrollment, request.key_secret)
    if repeated is None and not await external_auth.claim_enrollment_use(session, enrollment.id):
        # A concurrent copy of this very join may have won the last use.
        repeated = await _repeated(session, host_id, enrollment, request.key_secret)
        if repeated is None:
            raise EnrollmentRefusedError(_REFUSED)
    now = utcnow()
    platform = request.platform.model_dump(mode="json")
    host = await session.get(Host, host_id, with_for_update=True)
    if repeated is not None and host is not None:
        host.platform, host.hostname, host.last_seen_at = platform, request.platform.hostname, now
        return JoinResponse(
            host_id=host_id,
            api_key=repeated.value,
            key_id=repeated.id,
            poll_seconds=host.poll_seconds,
        )
    if host is not None and host.kind != _AGENT:
        raise HostTakenError(
            f"host id {host_id!r} is the hub's own machine; join with another host id"
        )
    if host is not None:
        return await _rejoin(session, request, host, enrollment, platform, now)
    session.add(
        Host(
            id=host_id,
            hostname=request.platform.hostname,
            kind=_AGENT,
            platform=platform,
            status={},
            enrollment_id=enrollment.id,
            poll_seconds=poll_seconds,
            created_at=now,
            last_seen_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    for metadata in defaults:
        session.add(instance_row(metadata, host_id, config={}, enabled=True))
    key = await agent_auth.issue_agent_key(
        session, host_id=host_id, enrollment_id=enrollment.id, secret=request.key_secret
    )
    log.info(
        "agent joined: host %s (%s) with enrollment token %s; %d plugins assigned",
        host_id,
        request.platform.hostname,
        enrollment.id,
        len(defaults),
    )
    return JoinResponse(
        host_id=host_id, api_key=key.value, key_id=key.id, poll_seconds=poll_seconds
    )


async def _rejoin(
    session: AsyncSession,
    request: JoinRequest,
    host: Host,
    enrollment: EnrollmentToken,
    platform: dict[str, Any],
    now: datetime,
) -> JoinResponse:
    """A new join of an agent host that exists (the agent lost its identity, or
    joins again with ``--force``): its keys are revoked -- forgotten at once --
    and a new one issued; its instances, their config and history stay."""
    revoked = await agent_auth.revoke_agent_keys(session, host.id)
    host.platform, host.hostname, host.last_seen_at = platform, request.platform.hostname, now
    host.enrollment_id = enrollment.id
    key = await agent_auth.issue_agent_key(
        session, host_id=host.id, enrollment_id=enrollment.id, secret=request.key_secret
    )
    log.warning(
        "agent joined again: host %s (%s) with enrollment token %s; %d earlier key(s) "
        "revoked, new key %s",
        host.id,
        request.platform.hostname,
        enrollment.id,
        revoked,
        key.id,
    )
    return JoinResponse(
        host_id=host.id, api_key=key.value, key_id=key.id, poll_seconds=host.poll_seconds
    )


async def _repeated(
    session: AsyncSession, host_id: str, enrollment: EnrollmentToken, secret: str | None
) -> IssuedSecret | None:
    if secret is None:
        return None
    return await agent_auth.find_proposed_agent_key(
        session, host_id=host_id, enrollment_id=enrollment.id, secret=secret
    )


# -- status, proposals, signs of life ---------------------------------------------------


async def record_status(db: Database, host_id: str, status: AgentStatus) -> StatusAccepted:
    """Keep the agent's platform and state on its host row (the host card shows them)."""
    now = utcnow()
    async with db.writer() as session:
        host = await session.get(Host, host_id)
        if host is None:
            raise AgentGoneError(f"host {host_id!r} was removed from the hub; join again")
        host.platform = status.platform.model_dump(mode="json")
        host.hostname = status.platform.hostname
        host.status = status.model_dump(mode="json", exclude={"platform"})
        host.last_seen_at = now
        # What the agent cannot run fails, with the agent's reason, until a batch of it
        # arrives (the batch path sets its runs healthy again).
        for instance, problem in status.problems.items():
            await session.execute(
                update(Plugin)
                .where(Plugin.id == instance, Plugin.host_id == host_id)
                .values(state=PluginState.FAILING.value, last_error=problem[:2000])
                .execution_options(synchronize_session=False)
            )
    return StatusAccepted(host_id=host_id, received_at=now)


async def record_proposals(
    session: AsyncSession, host_id: str, proposals: Sequence[Proposal], now: datetime
) -> int:
    """Take in one discovery scan of ``host_id``; how many proposals are open after it.

    By key: a new proposal is open; one seen again keeps its status (dismissed
    stays dismissed, accepted stays accepted; one gone is open again) and, while
    undecided, takes the new suggestion; an open one the scan no longer reports
    is gone. A plugin that already runs enabled on the host is not proposed (an
    open proposal for it is gone). ``DuplicateProposalError`` (nothing changed)
    when the scan names a key twice. The host row is locked first, so concurrent
    reports of one host take turns.
    """
    seen: dict[str, Proposal] = {}
    for index, proposal in enumerate(proposals):
        if proposal.key in seen:
            raise DuplicateProposalError(proposal.key, index)
        seen[proposal.key] = proposal
    host = await session.get(Host, host_id, with_for_update=True)
    if host is None:
        raise AgentGoneError(f"host {host_id!r} was removed from the hub; join again")
    running = await _running_plugins(session, host)
    stored = {
        row.key: row
        for row in await session.scalars(
            select(DiscoveryProposal).where(DiscoveryProposal.host_id == host_id)
        )
    }
    covered = {key for key, proposal in seen.items() if proposal.plugin in running}
    for key, proposal in seen.items():
        row = stored.get(key)
        if key in covered:
            # Its plugin runs already: a decision on it stays, seen; nothing opens.
            if row is not None and row.status not in (_OPEN, _GONE):
                row.last_seen_at = now
            continue
        if row is None:
            row = DiscoveryProposal(host_id=host_id, key=key, status=_OPEN, first_seen_at=now)
            session.add(row)
        elif row.status == _GONE:
            row.status = _OPEN
        if row.status == _OPEN:
            row.plugin, row.title, row.reason = proposal.plugin, proposal.title, proposal.reason
            row.config, row.credential = proposal.config, proposal.credential
        row.last_seen_at = now
    for key, row in stored.items():
        if (key not in seen or key in covered) and row.status == _OPEN:
            row.status = _GONE
    await session.flush()
    count = await session.scalar(
        select(func.count())
        .select_from(DiscoveryProposal)
        .where(DiscoveryProposal.host_id == host_id, DiscoveryProposal.status == _OPEN)
    )
    return int(count or 0)


async def _running_plugins(session: AsyncSession, host: Host) -> set[str]:
    """The plugins enabled on ``host``: an agent's instances, or the hub's own plugins."""
    if host.kind == _AGENT:
        query = select(Plugin.plugin_type).where(Plugin.host_id == host.id, Plugin.enabled)
    else:
        query = select(Plugin.id).where(
            Plugin.host_id.is_(None), Plugin.external.is_(False), Plugin.enabled
        )
    return {name for name in await session.scalars(query) if name}


class _Beats:
    """Hosts heard from since this hub last wrote ``last_seen_at``, and when it did."""

    def __init__(self) -> None:
        self.seen: dict[str, datetime] = {}
        self.written_at = float("-inf")  # time.monotonic()
        self.writing = False


_beats: weakref.WeakKeyDictionary[Database, _Beats] = weakref.WeakKeyDictionary()


async def heartbeat(db: Database, host_id: str) -> None:
    """The agent of ``host_id`` was heard from: its host's ``last_seen_at`` moves on.

    Kept in memory and written for every host heard from in one transaction, at
    most every ``HEARTBEAT_SECONDS`` per hub: one write per agent and call (or
    per agent and period) made up a third of a busy hub's write transactions
    with 200 agents (``benchmarks/agents_hub.py``), where a host is stale only
    after several missed polls. Each host's time is its latest call; a write
    that fails leaves the times for the next call to write."""
    beats = _beats.setdefault(db, _Beats())
    beats.seen[host_id] = utcnow()
    now = time.monotonic()
    if beats.writing or now - beats.written_at < HEARTBEAT_SECONDS:
        return
    beats.writing, beats.written_at = True, now
    taken, beats.seen = beats.seen, {}
    try:
        # Sorted: hubs sharing a PostgreSQL lock host rows in one order.
        rows = [{"host": host, "at": taken[host]} for host in sorted(taken)]
        async with db.write_connection() as connection:
            await connection.execute(_BEAT, rows)
    except BaseException:
        for host, at in taken.items():
            beats.seen.setdefault(host, at)  # a newer call's time wins
        beats.written_at = float("-inf")
        raise
    finally:
        beats.writing = False


_BEAT = (
    update(Host)
    .where(Host.id == bindparam("host"))
    .values(last_seen_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
