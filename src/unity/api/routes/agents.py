"""The agent API (``/api/agents/v1``): join, assignments, status and proposals.

An agent joins with an enrollment token and from then on calls with its own
key (``unitya_...``). Its samples and health go through the external-plugin
endpoints (``POST /api/plugins/v2/{instance_id}/metrics`` and ``/health``),
where its key counts only for its own host's instances. The wire models are
the SDK's (:mod:`unity_sdk`), which ``unity-agent`` sends.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from unity.api.body import body_schema, json_body, parse_body, read_json
from unity.api.clients import client_address, failure_limiter, too_many_failures
from unity.api.deps import AgentKeyDep, DatabaseDep, ManagerDep, Principal
from unity.api.errors import ApiError
from unity.auth.ratelimit import TooManyFailuresError
from unity.plugins import agents, assignments, external
from unity.storage.types import utcnow
from unity_sdk import (
    AGENT_API_PATH,
    AgentStatus,
    Assignments,
    JoinRequest,
    JoinResponse,
    ProposalReport,
    ProposalsAccepted,
    StatusAccepted,
)

__all__ = ["router"]

router = APIRouter(prefix=AGENT_API_PATH, tags=["agents"])
_enrollment = HTTPBearer(auto_error=False, description="An enrollment token (`unitye_...`).")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def _host(agent: Principal) -> str:
    assert agent.host_id is not None
    return agent.host_id


@router.post(
    "/join",
    response_model=JoinResponse,
    status_code=201,
    openapi_extra=body_schema(JoinRequest.model_json_schema()),
)
async def join(
    request: Request,
    manager: ManagerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_enrollment)],
) -> JoinResponse:
    """Join a host with an enrollment token; the answer holds the agent's key, shown
    this once. The host gets the four psutil plugins (system-info, process-monitor,
    disk-monitor, network-monitor) as instances ``{plugin}@{host_id}``.

    401 for a wrong, expired, revoked or used-up token (counted as a failed
    authentication of the client: 429 past the limit); 403 for a takeover
    token; 409 when the host id is the hub's own machine. A join naming an
    agent host that exists replaces that host's key (the old one stops working
    at once) and keeps its instances, their config and history. With
    ``key_secret`` a retry (same token, host id and secret) returns the same key
    and spends no further use of the token. Nothing is written unless the join
    succeeds."""
    if credentials is None:
        raise _unauthorized("an enrollment token is required")
    body = parse_body(JoinRequest, await read_json(request))
    refused: external.EnrollmentRefusedError | None = None
    try:
        async with failure_limiter(request).attempt(client_address(request)) as attempt:
            try:
                return await agents.join(manager, body, credentials.credentials)
            except external.EnrollmentRefusedError as exc:
                attempt.failed()
                refused = exc
    except TooManyFailuresError as exc:
        raise too_many_failures(exc) from None
    except external.EnrollmentScopeError as exc:
        raise ApiError(403, str(exc)) from exc
    raise _unauthorized(str(refused))


def _matches(if_none_match: str | None, revision: str) -> bool:
    """Whether an ``If-None-Match`` header names the current revision (RFC 9110:
    a list of entity tags, weak ones compared weakly, or ``*``)."""
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == f'"{revision}"' for tag in tags)


@router.get(
    "/assignments",
    response_model=Assignments,
    responses={304: {"description": "Nothing changed since the revision in If-None-Match"}},
)
async def get_assignments(request: Request, agent: AgentKeyDep, manager: ManagerDep) -> Response:
    """What runs on the agent's host, with the config each instance runs with
    (credential references resolved for this agent alone; each resolution is in
    the credential audit log). The ``ETag`` is the ``revision``, which changes
    whenever an instance is added, removed or changed: with ``If-None-Match``
    naming it the answer is 304 without a body, and nothing is resolved.
    Every call counts as a sign of life of the host."""
    try:
        planned = await assignments.plan(manager.db, _host(agent))
    except agents.AgentGoneError as exc:
        raise _unauthorized(str(exc)) from exc
    headers = {"ETag": f'"{planned.revision}"', "Cache-Control": "no-store"}
    if _matches(request.headers.get("if-none-match"), planned.revision):
        return Response(status_code=304, headers=headers)
    answer = await assignments.assignments(manager, planned, source=client_address(request))
    return JSONResponse(answer.model_dump(mode="json"), headers=headers)


@router.post(
    "/status",
    response_model=StatusAccepted,
    openapi_extra=body_schema(AgentStatus.model_json_schema()),
)
async def post_status(
    agent: AgentKeyDep,
    body: Annotated[AgentStatus, json_body(AgentStatus)],
    db: DatabaseDep,
) -> StatusAccepted:
    """The agent's platform, buffer counts and the instances it cannot run (shown on
    its host card)."""
    try:
        return await agents.record_status(db, _host(agent), body)
    except agents.AgentGoneError as exc:
        raise _unauthorized(str(exc)) from exc


@router.put(
    "/proposals",
    response_model=ProposalsAccepted,
    openapi_extra=body_schema(ProposalReport.model_json_schema()),
)
async def put_proposals(
    agent: AgentKeyDep,
    body: Annotated[ProposalReport, json_body(ProposalReport)],
    db: DatabaseDep,
) -> ProposalsAccepted:
    """Every proposal of one discovery scan: new ones are opened, those seen again
    keep their status (a dismissed one stays dismissed), open ones no longer seen
    are closed as gone. 422 when the report names one key twice."""
    host_id = _host(agent)
    try:
        async with db.writer() as session:
            count = await agents.record_proposals(session, host_id, body.proposals, utcnow())
    except agents.DuplicateProposalError as exc:
        detail = {"loc": ["proposals", exc.index, "key"], "msg": str(exc)}
        raise ApiError(422, str(exc), details=[detail]) from exc
    except agents.AgentGoneError as exc:
        raise _unauthorized(str(exc)) from exc
    return ProposalsAccepted(host_id=host_id, open=count)
