"""Admin endpoints for external plugins' enrollment tokens and plugin keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from pydantic import AliasChoices, BaseModel, Field

from unity.api.body import body_schema, json_body
from unity.api.deps import AdminToken, SessionDep
from unity.api.errors import ApiError
from unity.auth import external as external_auth
from unity.plugins.runtime import PluginNotFoundError
from unity.storage import registry

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["external plugins"])


class EnrollmentCreate(BaseModel):
    name: str = Field(default="enrollment", min_length=1, max_length=128)
    expires_in_hours: float = Field(default=24, gt=0, le=24 * 365)
    # The column is a 32-bit INTEGER on PostgreSQL.
    max_uses: int | None = Field(
        default=1, ge=1, le=2**31 - 1, description="null: unlimited until expiry"
    )
    takeover: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=(
            "An external plugin's id: the token then registers only that id, and its "
            "registration takes the id over from the current owner, whose keys are revoked"
        ),
    )


class EnrollmentOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    expires_at: datetime
    max_uses: int | None
    uses: int
    revoked_at: datetime | None
    takeover: str | None = Field(validation_alias=AliasChoices("takeover_plugin_id", "takeover"))


class EnrollmentCreated(EnrollmentOut):
    token: str = Field(description="Shown only in this answer")


class PluginKeyOut(BaseModel):
    id: str
    plugin_id: str
    hostname: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@router.post(
    "/enrollment-tokens",
    response_model=EnrollmentCreated,
    status_code=201,
    openapi_extra=body_schema(EnrollmentCreate.model_json_schema()),
)
async def create_enrollment(
    _: AdminToken,
    body: Annotated[EnrollmentCreate, json_body(EnrollmentCreate)],
    session: SessionDep,
) -> EnrollmentCreated:
    """Create an enrollment token for external plugins (shown once).

    With ``takeover`` it is the admin's explicit hand-over of that external
    plugin's id: without one, a token cannot register an id another token owns."""
    try:
        row, value = await external_auth.create_enrollment(
            session,
            name=body.name,
            expires_in=timedelta(hours=body.expires_in_hours),
            max_uses=body.max_uses,
            takeover=body.takeover,
        )
    except external_auth.TakeoverTargetError as exc:
        raise ApiError(422, str(exc), details=[{"loc": ["takeover"], "msg": str(exc)}]) from exc
    out = EnrollmentOut.model_validate(row, from_attributes=True)
    return EnrollmentCreated(**out.model_dump(), token=value)


@router.get("/enrollment-tokens", response_model=list[EnrollmentOut])
async def list_enrollments(_: AdminToken, session: SessionDep) -> list[EnrollmentOut]:
    """Every enrollment token, without secrets."""
    rows = await external_auth.list_enrollments(session)
    return [EnrollmentOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/enrollment-tokens/{token_id}", status_code=204)
async def revoke_enrollment(token_id: str, _: AdminToken, session: SessionDep) -> None:
    """Revoke an enrollment token; keys it already issued stay valid."""
    if not await external_auth.revoke_enrollment(session, token_id):
        raise ApiError(404, f"no live enrollment token {token_id!r}")


@router.get("/plugins/v2/{plugin_id}/keys", response_model=list[PluginKeyOut])
async def list_keys(plugin_id: str, _: AdminToken, session: SessionDep) -> list[PluginKeyOut]:
    """The API keys issued to an external plugin (never their secrets)."""
    if await registry.get_plugin(session, plugin_id) is None:
        raise PluginNotFoundError(plugin_id)
    rows = await external_auth.list_plugin_keys(session, plugin_id)
    return [PluginKeyOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/plugins/v2/{plugin_id}/keys/{key_id}", status_code=204)
async def revoke_key(plugin_id: str, key_id: str, _: AdminToken, session: SessionDep) -> None:
    """Revoke one API key: the plugin's next report with it gets 401."""
    if not await external_auth.revoke_plugin_key(session, plugin_id=plugin_id, key_id=key_id):
        raise ApiError(404, f"plugin {plugin_id!r} has no live key {key_id!r}")
