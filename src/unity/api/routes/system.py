"""Liveness (``/healthz``), readiness (``/readyz``) and the Prometheus
exposition (``/metrics``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import exc as sa_exc

from unity.api.deps import DatabaseDep, ManagerDep, ReadToken, SessionDep, SettingsDep
from unity.api.errors import database_busy, database_unavailable
from unity.prometheus import render_exposition

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process serves requests. Needs no credential."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database is unavailable"}})
async def readyz(db: DatabaseDep, settings: SettingsDep) -> Response:
    """Readiness: 200 when the database answers, else 503 with ``Retry-After``.
    For load balancers; needs no credential. ``/healthz`` stays up meanwhile."""
    try:
        async with asyncio.timeout(settings.database_connect_timeout):
            await db.ping()
    except Exception as exc:
        # Whatever stops a SELECT 1 makes the hub unfit for traffic; a full pool
        # is said as such (and is no outage).
        if isinstance(exc, sa_exc.TimeoutError):
            return database_busy()
        db.outage.failed(exc)
        return database_unavailable()
    return Response('{"status":"ok"}', media_type="application/json")


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(
    _: ReadToken, session: SessionDep, manager: ManagerDep, request: Request
) -> Response:
    """Prometheus text format: the latest value of every declared numeric metric
    per plugin and host, and the hub's own counters. Scrape with a read token
    (``authorization: {credentials: <token>}`` in the scrape config)."""
    notifier = getattr(request.app.state, "notifier", None)
    extra = [notifier.registry] if notifier is not None else []
    body = await render_exposition(session, manager, extra=extra)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
