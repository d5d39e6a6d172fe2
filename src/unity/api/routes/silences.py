"""``/api/alerts/silences`` and ``/api/alerts/maintenance``: when alerts are not told.

A silence matches alerts by rule, plugin, host, item and labels; a
maintenance window covers every alert of one host. Both stop notices, never
the alerts' state. Reading needs a read token, changes an admin token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, model_validator

from unity.alerts import AlertEngine
from unity.api.body import body_schema, json_body
from unity.api.deps import AdminToken, DatabaseDep, ReadToken
from unity.api.errors import ApiError
from unity.api.routes.credentials import actor_of
from unity.storage.models import AlertSilence, MaintenanceWindow
from unity.storage.types import utcnow
from unity.views import alerts as views

__all__ = ["router"]

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


def _engine(request: Request) -> AlertEngine:
    engine: AlertEngine = request.app.state.alerts
    return engine


def _loc(field: str, msg: str = "") -> dict[str, Any]:
    return {"loc": field.split("."), "msg": msg}


class Matchers(BaseModel):
    rule_id: str | None = None
    plugin_id: str | None = None
    host: str | None = None
    item: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class _Period(BaseModel):
    starts_at: datetime | None = Field(default=None, description="Default: now")
    ends_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, gt=0, le=366 * 86400)
    comment: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _one_end(self) -> _Period:
        if (self.ends_at is None) == (self.duration_seconds is None):
            raise ValueError("give ends_at or duration_seconds")
        for value in (self.starts_at, self.ends_at):
            if value is None:
                continue
            if value.tzinfo is None:
                raise ValueError("times need a time zone (e.g. 2026-12-01T10:00:00Z)")
            try:
                year = value.astimezone(UTC).year
            except OverflowError:
                year = 0
            if not 2000 <= year <= 9000:
                raise ValueError("times must fall between the years 2000 and 9000")
        return self

    def period(self) -> tuple[datetime, datetime]:
        start = self.starts_at or utcnow()
        end = self.ends_at or start + timedelta(seconds=self.duration_seconds or 0)
        if end <= start:
            raise ApiError(422, "ends_at must be after starts_at", details=[_loc("ends_at")])
        return start, end


class SilenceIn(_Period):
    matchers: Matchers


class SilenceOut(BaseModel):
    id: int
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    active: bool


class SilenceList(BaseModel):
    items: list[SilenceOut]


class WindowIn(_Period):
    host: str = Field(min_length=1, max_length=255)


class WindowOut(BaseModel):
    id: int
    host: str
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    active: bool


class WindowList(BaseModel):
    items: list[WindowOut]


# -- silences and maintenance ---------------------------------------------


def silence_out(row: AlertSilence, now: datetime) -> SilenceOut:
    return SilenceOut.model_validate(views.silence_view(row, now), from_attributes=True)


def window_out(row: MaintenanceWindow, now: datetime) -> WindowOut:
    return WindowOut.model_validate(views.window_view(row, now), from_attributes=True)


@router.get("/silences", response_model=SilenceList)
async def list_silences(_: ReadToken, db: DatabaseDep) -> SilenceList:
    """Silences that have not ended, by end."""
    async with db.session() as session:
        found = await views.current_silences(session, now=utcnow())
    return SilenceList(items=[SilenceOut.model_validate(v, from_attributes=True) for v in found])


@router.post(
    "/silences",
    response_model=SilenceOut,
    status_code=201,
    openapi_extra=body_schema(SilenceIn.model_json_schema()),
)
async def add_silence(
    caller: AdminToken,
    body: Annotated[SilenceIn, json_body(SilenceIn)],
    db: DatabaseDep,
    request: Request,
) -> SilenceOut:
    """Stop telling alerts that match every given matcher, from start to end."""
    async with db.session() as session:
        matchers = body.matchers.model_dump(exclude_none=True)
        if not matchers.get("labels"):
            matchers.pop("labels", None)
        if not matchers:
            raise ApiError(422, "matchers: give at least one", details=[_loc("matchers")])
        start, end = body.period()
        row = AlertSilence(
            matchers=matchers, starts_at=start, ends_at=end, comment=body.comment,
            created_by=actor_of(caller),
        )  # fmt: skip
        session.add(row)
        await session.flush()
        result = silence_out(row, utcnow())
    await _engine(request).refresh()
    return result


@router.delete("/silences/{silence_id}", status_code=204)
async def delete_silence(
    silence_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    _: AdminToken,
    db: DatabaseDep,
    request: Request,
) -> Response:
    """End a silence now (it is deleted)."""
    async with db.session() as session:
        row = await session.get(AlertSilence, silence_id)
        if row is None:
            raise ApiError(404, f"no silence {silence_id}")
        await session.delete(row)
        result = Response(status_code=204)
    await _engine(request).refresh()
    return result


@router.get("/maintenance", response_model=WindowList)
async def list_windows(_: ReadToken, db: DatabaseDep) -> WindowList:
    """Maintenance windows that have not ended, by end."""
    async with db.session() as session:
        found = await views.current_windows(session, now=utcnow())
    return WindowList(items=[WindowOut.model_validate(v, from_attributes=True) for v in found])


@router.post(
    "/maintenance",
    response_model=WindowOut,
    status_code=201,
    openapi_extra=body_schema(WindowIn.model_json_schema()),
)
async def add_window(
    caller: AdminToken,
    body: Annotated[WindowIn, json_body(WindowIn)],
    db: DatabaseDep,
    request: Request,
) -> WindowOut:
    """Planned work on a host: none of its alerts are told in the window."""
    async with db.session() as session:
        start, end = body.period()
        row = MaintenanceWindow(
            host=body.host, starts_at=start, ends_at=end, comment=body.comment,
            created_by=actor_of(caller),
        )  # fmt: skip
        session.add(row)
        await session.flush()
        result = window_out(row, utcnow())
    await _engine(request).refresh()
    return result


@router.delete("/maintenance/{window_id}", status_code=204)
async def delete_window(
    window_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    _: AdminToken,
    db: DatabaseDep,
    request: Request,
) -> Response:
    """End a maintenance window now (it is deleted)."""
    async with db.session() as session:
        row = await session.get(MaintenanceWindow, window_id)
        if row is None:
            raise ApiError(404, f"no maintenance window {window_id}")
        await session.delete(row)
        result = Response(status_code=204)
    await _engine(request).refresh()
    return result
