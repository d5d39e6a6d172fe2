"""The endpoints external plugins call: register, report metrics, report health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from unity.api.body import body_schema, parse_body, read_json
from unity.api.deps import ManagerDep, PluginKey, SettingsDep
from unity.api.errors import ApiError
from unity.plugins import external
from unity_sdk import MetadataError
from unity_sdk.wire import (
    MAX_BATCH_SAMPLES,
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


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]


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
    plugin's own API key, shown this once."""
    if credentials is None:
        raise ApiError(
            401, "an enrollment token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    body = parse_body(RegisterRequest, await read_json(request))
    try:
        return await external.register(manager, body, credentials.credentials)
    except external.EnrollmentRefusedError as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    except MetadataError as exc:
        raise ApiError(422, str(exc)) from exc


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
    invalid sample refuses the whole batch with 422 naming its index."""
    raw = await read_json(request, settings.max_batch_bytes)
    samples = raw.get("samples") if isinstance(raw, dict) else None
    if isinstance(samples, list) and len(samples) > MAX_BATCH_SAMPLES:
        raise ApiError(413, f"a batch holds at most {MAX_BATCH_SAMPLES} samples")
    try:
        batch = MetricBatch.model_validate(raw)
    except ValidationError as exc:
        details = _validation_details(exc)
        bad = [d["loc"][1] for d in details if d["loc"][:1] == ["samples"] and len(d["loc"]) > 1]
        message = f"sample {bad[0]} is invalid; nothing was stored" if bad else "batch is invalid"
        raise ApiError(422, message, details=details) from exc
    return await external.store_batch(manager, plugin_id, batch)


@router.post(
    "/{plugin_id}/health",
    response_model=HealthAccepted,
    openapi_extra=body_schema(HealthReport.model_json_schema()),
)
async def report_health(
    plugin_id: str, request: Request, _: PluginKey, manager: ManagerDep
) -> HealthAccepted:
    """An external plugin reports its own health and buffer state."""
    report = parse_body(HealthReport, await read_json(request))
    received = await external.record_health(manager, plugin_id, report)
    return HealthAccepted(plugin_id=plugin_id, status=report.status, received_at=received)
