"""``/api/hosts``: every machine with its plugins, and what discovery proposes on each.

A host is the hub's own machine (kind "hub") or one an agent runs on (kind
"agent"). Adding a plugin to an agent's host makes a plugin *instance*
(``"{plugin}@{host}"``); its config, enabling and history then go through
``/api/plugins/v2/{instance_id}`` like any plugin's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from unity.api.body import body_schema, json_body
from unity.api.deps import AdminToken, ManagerDep, ReadToken, SessionDep
from unity.api.errors import ApiError
from unity.api.host_schemas import (
    Accepted,
    AcceptProposal,
    AddPlugin,
    AgentStatusOut,
    HostDetailOut,
    HostOut,
    HostPluginOut,
    PlatformOut,
    ProposalOut,
)
from unity.api.routes.credentials import credential_errors
from unity.api.schemas import PluginDetail, PluginSummary
from unity.plugins import hosts as host_actions
from unity.plugins import proposals
from unity.plugins.hosts import HostLookupError
from unity.views import catalogue
from unity.views.hosts import HostCard, host_cards, host_detail, host_proposals

__all__ = ["router"]

router = APIRouter(tags=["hosts"])

HostId = Annotated[str, Path(max_length=64, description="The host's id, e.g. nas")]
ProposalId = Annotated[int, Path(ge=1, le=2**31 - 1)]
STATUSES = (proposals.OPEN, proposals.ACCEPTED, proposals.DISMISSED, proposals.GONE)


@contextmanager
def _lookups() -> Iterator[None]:
    """An unknown host or proposal answers 404 with what was not found."""
    try:
        with credential_errors():
            yield
    except HostLookupError as exc:
        raise ApiError(404, str(exc)) from None


def host_out(card: HostCard) -> HostOut:
    return HostOut(
        id=card.id,
        hostname=card.hostname,
        kind=card.kind,
        state=card.state,
        last_seen_at=card.last_seen_at,
        updated_at=card.updated_at,
        platform=PlatformOut.model_validate(card.platform),
        cpu_percent=card.cpu.value if card.cpu else None,
        memory_percent=card.memory.value if card.memory else None,
        disk_percent=card.disk.value if card.disk else None,
        plugins=[HostPluginOut.model_validate(p) for p in card.plugins],
        open_proposals=card.open_proposals,
        agent=AgentStatusOut.model_validate(card.agent) if card.agent else None,
    )


@router.get("/api/hosts", response_model=list[HostOut])
async def list_hosts(_: ReadToken, session: SessionDep, manager: ManagerDep) -> list[HostOut]:
    """Every host, the hub's own first: state, machine, CPU/memory/disk, plugins,
    open proposals and (agents) the agent's last status."""
    cards = await host_cards(session, manager, with_sparks=False)
    return [host_out(card) for card in cards if card.kind in (host_actions.HUB, host_actions.AGENT)]


@router.get("/api/hosts/{host_id}", response_model=HostDetailOut)
async def get_host(
    host_id: HostId, _: ReadToken, session: SessionDep, manager: ManagerDep
) -> HostDetailOut:
    """One host with every plugin on it (disabled ones too) and all its proposals."""
    with _lookups():
        detail = await host_detail(session, manager, host_id)
    return HostDetailOut(
        **host_out(detail.card).model_dump(),
        instances=[PluginSummary.model_validate(p) for p in detail.instances],
        proposals=[ProposalOut.model_validate(p) for p in detail.proposals],
    )


@router.delete("/api/hosts/{host_id}", status_code=204)
async def remove_host(host_id: HostId, _: AdminToken, manager: ManagerDep) -> Response:
    """Remove an agent's host: its agent key is revoked (its next call gets 401), its
    plugin instances and their history and its proposals are deleted. The hub's own
    host cannot be removed (409)."""
    with _lookups():
        await host_actions.remove_host(manager, host_id)
    return Response(status_code=204)


@router.post(
    "/api/hosts/{host_id}/plugins",
    response_model=PluginDetail,
    status_code=201,
    openapi_extra=body_schema(AddPlugin.model_json_schema()),
)
async def add_plugin(
    host_id: HostId,
    _: AdminToken,
    manager: ManagerDep,
    body: Annotated[AddPlugin, json_body(AddPlugin)],
) -> PluginDetail:
    """Run a catalogue plugin on the host. On an agent's host this makes the instance
    ``{plugin}@{host}``, which the agent picks up at its next poll; on the hub's own
    host it configures and enables the hub's plugin. The config is validated against
    the plugin's schema (422, nothing saved); 409 when the host already runs it."""
    with _lookups():
        plugin_id = await host_actions.add_plugin(
            manager,
            host_id,
            body.plugin,
            body.config,
            interval=body.interval,
            enabled=body.enabled,
        )
    return PluginDetail.model_validate(catalogue.detail_of(manager, await manager.row(plugin_id)))


@router.delete("/api/plugins/v2/{plugin_id}", status_code=204, tags=["plugins"])
async def delete_instance(plugin_id: str, _: AdminToken, manager: ManagerDep) -> Response:
    """Delete a plugin instance of an agent's host with its history; the agent stops
    running it at its next poll. The hub's own plugins are disabled instead (409)."""
    await host_actions.delete_instance(manager, plugin_id)
    return Response(status_code=204)


@router.get("/api/hosts/{host_id}/proposals", response_model=list[ProposalOut])
async def list_proposals(
    host_id: HostId,
    _: ReadToken,
    session: SessionDep,
    status: Annotated[str | None, Query(description=f"Only one of: {', '.join(STATUSES)}")] = None,
) -> list[ProposalOut]:
    """What discovery proposes to monitor on the host, newest first."""
    if status is not None and status not in STATUSES:
        message = f"status must be one of {', '.join(STATUSES)}"
        raise ApiError(422, message, details=[{"loc": ["query", "status"], "msg": message}])
    with _lookups():
        found = await host_proposals(session, host_id, status=status)
    return [ProposalOut.model_validate(p) for p in found]


@router.post(
    "/api/hosts/{host_id}/proposals/{proposal_id}/accept",
    response_model=Accepted,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": AcceptProposal.model_json_schema()}},
        }
    },
)
async def accept_proposal(
    host_id: HostId,
    proposal_id: ProposalId,
    _: AdminToken,
    manager: ManagerDep,
    body: Annotated[AcceptProposal | None, json_body(AcceptProposal, optional=True)],
) -> Accepted:
    """Accept a proposal: its plugin runs on the host with the suggested config, the
    body's ``config`` on top; ``credential`` names a stored credential for the field the
    proposal says needs one. On the hub's own host it configures and enables the hub's
    plugin (409 when that is already enabled with another config)."""
    body = body or AcceptProposal()
    with _lookups():
        plugin_id = await proposals.accept_proposal(
            manager, host_id, proposal_id, overrides=body.config, credential=body.credential
        )
    return Accepted(plugin_id=plugin_id)


@router.post("/api/hosts/{host_id}/proposals/{proposal_id}/dismiss", response_model=ProposalOut)
async def dismiss_proposal(
    host_id: HostId,
    proposal_id: ProposalId,
    _: AdminToken,
    session: SessionDep,
    manager: ManagerDep,
) -> ProposalOut:
    """Dismiss a proposal for good: later scans that find the same thing do not reopen it."""
    with _lookups():
        await proposals.dismiss_proposal(manager.db, host_id, proposal_id)
        found = await host_proposals(session, host_id)
    return next(ProposalOut.model_validate(p) for p in found if p.id == proposal_id)
