"""Hosts as the overview, the host page, ``GET /api/hosts`` and ``unity hosts`` show them.

A host card is one machine: the hub's own (its in-hub plugins, documents of
its host name) or an agent's (its plugin instances, ``"{plugin}@{host}"``).
Its state is :func:`unity.plugins.hosts.host_state`; its headline numbers come
from its latest documents (:mod:`unity.views.readings`), those of system-info
and disk-monitor first. Documents of hosts that are neither (an SSH target, an
external plugin's machine) make "reported" cards, as before hosts existed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.hosts import AGENT, HUB, HostLookupError, catalogue, host_state, worst_state
from unity.plugins.manager import PluginManager
from unity.storage import metrics as metric_store
from unity.storage.models import DiscoveryProposal, Host, LatestMetric, Plugin
from unity.storage.types import utcnow
from unity.views.catalogue import PluginView, every_plugin
from unity.views.readings import Headlines, Reading, Sparkline, sparks
from unity_sdk import PluginState

__all__ = [
    "REPORTED",
    "AgentView",
    "HostCard",
    "HostDetail",
    "HostPluginView",
    "PlatformView",
    "ProposalView",
    "addable_plugins",
    "host_cards",
    "host_detail",
    "host_proposals",
]

# A host known only from documents: no agent, not the hub's machine.
REPORTED = "reported"
# Their headline numbers win over other plugins' on the same host.
_PREFERRED = ("system-info", "disk-monitor")
_MIN_STALE = timedelta(seconds=30)


@dataclass(frozen=True)
class HostPluginView:
    """One plugin on a host's card: its id, which catalogue plugin it is, its state."""

    id: str
    plugin_type: str
    name: str
    enabled: bool
    state: PluginState
    message: str


@dataclass(frozen=True)
class PlatformView:
    os: str = ""
    distribution: str = ""
    architecture: str = ""
    cpu_count: int | None = None
    memory_bytes: int | None = None
    agent_version: str = ""


@dataclass(frozen=True)
class AgentView:
    """What the host's agent said about itself last (``unity_sdk.AgentStatus``)."""

    buffered: int = 0
    dropped: int = 0
    sent: int = 0
    problems: dict[str, str] = field(default_factory=dict)
    started_at: str | None = None


@dataclass
class HostCard:
    id: str
    hostname: str
    kind: str  # "hub", "agent" or "reported"
    state: PluginState
    last_seen_at: datetime | None
    updated_at: datetime | None  # the newest document of the host
    platform: PlatformView = field(default_factory=PlatformView)
    agent: AgentView | None = None
    cpu: Reading | None = None
    memory: Reading | None = None
    disk: Reading | None = None
    temperatures: list[Reading] = field(default_factory=list)
    plugins: list[HostPluginView] = field(default_factory=list)
    open_proposals: int = 0
    sparks: list[Sparkline] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.hostname

    @property
    def stale(self) -> bool:
        return self.state is PluginState.STALE


@dataclass(frozen=True)
class ProposalView:
    id: int
    host_id: str
    key: str
    plugin: str
    title: str
    reason: str
    config: dict[str, Any]
    credential: str | None
    status: str
    first_seen_at: datetime
    last_seen_at: datetime
    decided_at: datetime | None
    plugin_id: str | None


@dataclass
class HostDetail:
    card: HostCard
    instances: list[PluginView]
    proposals: list[ProposalView]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _platform(document: dict[str, Any]) -> PlatformView:
    def text(key: str) -> str:
        value = document.get(key)
        return value if isinstance(value, str) else ""

    def number(key: str) -> int | None:
        value = document.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return PlatformView(
        os=text("os"),
        distribution=text("distribution"),
        architecture=text("architecture"),
        cpu_count=number("cpu_count"),
        memory_bytes=number("memory_bytes"),
        agent_version=text("agent_version"),
    )


def _agent(status: dict[str, Any]) -> AgentView:
    def count(key: str) -> int:
        value = status.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    problems = status.get("problems")
    if not isinstance(problems, dict):
        problems = {}
    started = status.get("started_at")
    return AgentView(
        buffered=count("buffered"),
        dropped=count("dropped"),
        sent=count("sent"),
        problems={str(k): str(v) for k, v in problems.items()}
        if isinstance(problems, dict)
        else {},
        started_at=started if isinstance(started, str) else None,
    )


def _member(view: PluginView, plugin_type: str | None) -> HostPluginView:
    message = view.last_error or view.health.message
    return HostPluginView(
        view.id, plugin_type or view.id, view.name, view.enabled, view.state, message
    )


def _interval(view: PluginView) -> float:
    declared = view.declared
    return float(view.interval or (declared.default_interval if declared else 60.0))


def _headlines(
    card: HostCard,
    documents: Iterable[LatestMetric],
    views: dict[str, PluginView],
    types: dict[str, str | None],
) -> None:
    def order(doc: LatestMetric) -> tuple[bool, str]:
        kind = types.get(doc.plugin_id) or doc.plugin_id
        return kind not in _PREFERRED, doc.plugin_id

    found = Headlines()
    for doc in sorted(documents, key=order):
        view = views[doc.plugin_id]
        stamp = _aware(doc.timestamp)
        card.updated_at = stamp if card.updated_at is None else max(card.updated_at, stamp)
        if view.declared is not None:
            found.add(view.id, view.name, view.declared.metrics, doc.data, doc.host)
    card.cpu, card.memory, card.disk = found.cpu, found.memory, found.disk
    card.temperatures = found.temperatures


async def _open_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(DiscoveryProposal.host_id, func.count())
        .where(DiscoveryProposal.status == "open")
        .group_by(DiscoveryProposal.host_id)
    )
    return {str(host_id): int(count) for host_id, count in rows.all()}


async def _plugin_hosts(session: AsyncSession) -> dict[str, tuple[str | None, str | None]]:
    rows = await session.execute(select(Plugin.id, Plugin.host_id, Plugin.plugin_type))
    return {plugin_id: (host_id, kind) for plugin_id, host_id, kind in rows.all()}


def _on_hub(view: PluginView, owner: str | None) -> bool:
    """An in-hub plugin: runs on the hub's machine (loaded, enabled)."""
    return owner is None and not view.external and view.loaded and view.enabled


async def host_cards(
    session: AsyncSession,
    manager: PluginManager,
    *,
    plugins: list[PluginView] | None = None,
    with_sparks: bool = True,
    now: datetime | None = None,
) -> list[HostCard]:
    """Every host: the hub's own first, then the agents', then hosts only documents name."""
    now = now or utcnow()
    views = {v.id: v for v in plugins or await every_plugin(session, manager)}
    owners = await _plugin_hosts(session)
    types = {plugin_id: kind for plugin_id, (_, kind) in owners.items()}
    hosts = list((await session.scalars(select(Host))).all())
    hub_names = {h.hostname: h.id for h in hosts if h.kind == HUB}
    opened = await _open_counts(session)
    documents: dict[str, list[LatestMetric]] = {}
    reported: dict[str, list[LatestMetric]] = {}
    for doc in await metric_store.latest_documents(session):
        view = views.get(doc.plugin_id)
        if view is None or not view.enabled:
            continue
        owner = owners.get(doc.plugin_id, (None, None))[0]
        if owner is not None:
            documents.setdefault(owner, []).append(doc)
        elif _on_hub(view, owner) and doc.host in hub_names:
            documents.setdefault(hub_names[doc.host], []).append(doc)
        else:
            reported.setdefault(doc.host, []).append(doc)
    missed = manager.settings.stale_after_missed
    cards = []
    for host in hosts:
        if host.kind == HUB:
            members = [v for v in views.values() if _on_hub(v, owners.get(v.id, (None,))[0])]
        else:
            members = [v for v in views.values() if owners.get(v.id, (None,))[0] == host.id]
        own = host.id == manager.settings.host_id
        card = HostCard(
            id=host.id,
            hostname=host.hostname,
            kind=host.kind,
            state=host_state(
                kind=host.kind,
                last_seen_at=now if own else host.last_seen_at,
                poll_seconds=host.poll_seconds,
                instances=[(v.state, _interval(v)) for v in members],
                missed=missed,
                now=now,
            ),
            last_seen_at=now if own else host.last_seen_at,
            updated_at=None,
            platform=_platform(host.platform or {}),
            agent=_agent(host.status or {}) if host.kind == AGENT else None,
            plugins=[_member(v, types.get(v.id)) for v in members],
            open_proposals=opened.get(host.id, 0),
        )
        _headlines(card, documents.get(host.id, []), views, types)
        cards.append(card)
    cards.sort(key=lambda c: (c.id != manager.settings.host_id, c.kind != HUB, c.id))
    cards += _reported_cards(reported, views, types, missed, now)
    if with_sparks:
        for card in cards:
            headlines = Headlines(card.cpu, card.memory, card.disk)
            card.sparks = await sparks(session, headlines, now)
    return cards


def _reported_cards(
    reported: dict[str, list[LatestMetric]],
    views: dict[str, PluginView],
    types: dict[str, str | None],
    missed: int,
    now: datetime,
) -> list[HostCard]:
    """Hosts only documents name: stale when nothing came for ``missed`` of the
    shortest interval among their plugins (at least 30 seconds)."""
    cards = []
    for name in sorted(reported):
        docs = reported[name]
        members = [views[d.plugin_id] for d in docs]
        card = HostCard(
            id=name,
            hostname=name,
            kind=REPORTED,
            state=PluginState.UNKNOWN,
            last_seen_at=None,
            updated_at=None,
            plugins=[_member(v, types.get(v.id)) for v in members],
        )
        _headlines(card, docs, views, types)
        card.last_seen_at = card.updated_at
        shortest = min(_interval(v) for v in members)
        overdue = card.updated_at is not None and now - card.updated_at > max(
            timedelta(seconds=shortest * missed), _MIN_STALE
        )
        worst = worst_state(v.state for v in members)
        card.state = PluginState.STALE if overdue else (worst or PluginState.HEALTHY)
        cards.append(card)
    return cards


def _proposal(row: DiscoveryProposal) -> ProposalView:
    return ProposalView(
        id=row.id,
        host_id=row.host_id,
        key=row.key,
        plugin=row.plugin,
        title=row.title,
        reason=row.reason,
        config=dict(row.config or {}),
        credential=row.credential,
        status=row.status,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        decided_at=row.decided_at,
        plugin_id=row.plugin_id,
    )


async def host_proposals(
    session: AsyncSession, host_id: str, *, status: str | None = None
) -> list[ProposalView]:
    """A host's proposals, newest first (``HostLookupError`` for an unknown host)."""
    if await session.get(Host, host_id) is None:
        raise HostLookupError(f"no host with id {host_id!r}")
    stmt = (
        select(DiscoveryProposal)
        .where(DiscoveryProposal.host_id == host_id)
        .order_by(DiscoveryProposal.last_seen_at.desc(), DiscoveryProposal.id.desc())
    )
    if status is not None:
        stmt = stmt.where(DiscoveryProposal.status == status)
    return [_proposal(row) for row in (await session.scalars(stmt)).all()]


async def host_detail(session: AsyncSession, manager: PluginManager, host_id: str) -> HostDetail:
    """One host: its card, every plugin on it (disabled ones too), its proposals."""
    plugins = await every_plugin(session, manager)
    cards = await host_cards(session, manager, plugins=plugins)
    card = next((c for c in cards if c.id == host_id and c.kind != REPORTED), None)
    if card is None:
        raise HostLookupError(f"no host with id {host_id!r}")
    if card.kind == HUB:
        ids = {p.id for p in card.plugins}
        instances = [p for p in plugins if p.id in ids]
    else:
        owners = await _plugin_hosts(session)
        instances = [p for p in plugins if owners.get(p.id, (None, None))[0] == host_id]
    proposals = await host_proposals(session, host_id)
    return HostDetail(card, instances, proposals)


def addable_plugins(manager: PluginManager, card: HostCard) -> list[tuple[str, str]]:
    """``(id, name)`` of the plugins the host could run and does not yet: the
    catalogue on an agent's host, the hub's loaded plugins on its own."""
    taken = {p.plugin_type for p in card.plugins}
    if card.kind == HUB:
        offered = {m.id: m.metadata.name for m in manager.plugins.values()}
    else:
        offered = {plugin_id: m.name for plugin_id, m in catalogue().items()}
    return sorted((i, n) for i, n in offered.items() if i not in taken)
