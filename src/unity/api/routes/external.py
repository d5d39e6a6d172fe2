"""The endpoints external plugins call: register, report metrics, report health."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from unity.api.body import body_schema, parse_body, parse_json, read_body, read_json
from unity.api.clients import client_address, failure_limiter, too_many_failures
from unity.api.deps import ManagerDep, PluginKey, SettingsDep
from unity.api.errors import ApiError
from unity.auth.ratelimit import TooManyFailuresError
from unity.plugins import external, ingest
from unity_sdk import (
    MAX_HEALTH_REPORT_BYTES,
    BatchAccepted,
    HealthAccepted,
    HealthReport,
    MetricBatch,
    RegisterRequest,
    RegisterResponse,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/plugins/v2", tags=["external plugins"])
_enrollment = HTTPBearer(auto_error=False, description="An enrollment token (`unitye_...`).")


@router.post(
    "/register",
    response_model=RegisterResponse,
    status_code=201,
    openapi_extra=body_schema(RegisterRequest.model_json_schema()),
)
async def register_plugin(
    request: Request,
    manager: ManagerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_enrollment)],
) -> RegisterResponse:
    """Register an external plugin with an enrollment token; the answer holds the
    plugin's own API key, shown this once.

    An id belongs to the token of its first registration: 409 for another
    token, unless an admin created it with ``takeover`` for this id. With
    ``key_secret`` a retry (same token, id and secret) returns the same key
    and spends no further use of the token."""
    if credentials is None:
        raise ApiError(
            401, "an enrollment token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    body = parse_body(RegisterRequest, await read_json(request))
    refused: external.EnrollmentRefusedError | None = None
    try:
        # A wrong enrollment token counts as a failed authentication of the client.
        async with failure_limiter(request).attempt(client_address(request)) as attempt:
            try:
                return await external.register(manager, body, credentials.credentials)
            except external.EnrollmentRefusedError as exc:
                attempt.failed()
                refused = exc
    except TooManyFailuresError as exc:
        raise too_many_failures(exc) from None
    except external.EnrollmentScopeError as exc:
        raise ApiError(403, str(exc)) from exc
    raise ApiError(401, str(refused), headers={"WWW-Authenticate": "Bearer"})


@router.post(
    "/{plugin_id}/metrics",
    response_model=BatchAccepted,
    openapi_extra=body_schema(MetricBatch.model_json_schema()),
)
async def report_metrics(
    plugin_id: str,
    request: Request,
    _: PluginKey,
    manager: ManagerDep,
    settings: SettingsDep,
) -> BatchAccepted:
    """Store a batch of samples from an external plugin: all of them or none.

    A repeated ``batch_id`` is not stored again (``duplicate: true``). More than
    the sample limit, or a body over the size limit, is refused with 413; an
    invalid sample (unstorable number, timestamp too far ahead, a declared
    gauge or counter holding something other than a number) refuses the whole
    batch with 422 naming the sample and the field (:func:`unity_sdk.accept_batch`)."""
    body = await read_body(request, settings.max_batch_bytes)
    return await ingest.ingest(
        manager,
        plugin_id,
        body,
        max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
        parse=_parse_batch,
    )


# NaN and Infinity reach the wire model, which refuses them naming the field.
_parse_batch = partial(parse_json, model_checks_numbers=True)


@router.post(
    "/{plugin_id}/health",
    response_model=HealthAccepted,
    openapi_extra=body_schema(HealthReport.model_json_schema()),
)
async def report_health(
    plugin_id: str, request: Request, _: PluginKey, manager: ManagerDep
) -> HealthAccepted:
    """An external plugin reports its own health and buffer state. A body over
    the size limit is refused with 413, ``details`` over theirs with 422."""
    raw = await read_json(request, MAX_HEALTH_REPORT_BYTES, model_checks_numbers=True)
    report = parse_body(HealthReport, raw)
    received = await external.record_health(manager, plugin_id, report)
    return HealthAccepted(plugin_id=plugin_id, status=report.status, received_at=received)
