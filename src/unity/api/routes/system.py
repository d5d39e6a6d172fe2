"""Liveness (``/healthz``) and the Prometheus exposition (``/metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from unity.api.deps import ManagerDep, ReadToken, SessionDep
from unity.prometheus import render_exposition

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process serves requests. Needs no credential."""
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(_: ReadToken, session: SessionDep, manager: ManagerDep) -> Response:
    """Prometheus text format: the latest value of every declared numeric metric
    per plugin and host, and the hub's own counters. Scrape with a read token
    (``authorization: {credentials: <token>}`` in the scrape config)."""
    body = await render_exposition(session, manager)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
