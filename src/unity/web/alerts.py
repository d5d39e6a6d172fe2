"""The alerts pages: what fires (then what is pending, then what happened), and
the silences and maintenance windows that hold notices back.

They read through the read model (:mod:`unity.views.alerts`), as the API does;
every change is a call to ``/api/alerts`` made by the page's script, and the
admin-only buttons show as the API's own requirement allows (``may``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from unity.api.deps import SessionDep
from unity.auth.access import ADMIN
from unity.storage.types import utcnow
from unity.views import alerts as views
from unity.web.common import WebDep, may, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
HISTORY = 50


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, web: WebDep, session: SessionDep) -> HTMLResponse:
    active = await views.active_alerts(session)
    return render(
        request,
        "alerts.html",
        web,
        nav="alerts",
        firing=[a for a in active if a.state == "firing"],
        pending=[a for a in active if a.state == "pending"],
        history=await views.alert_history(session, limit=HISTORY),
        may_ack=may(web, ADMIN),
    )


@router.get("/alerts/silences", response_class=HTMLResponse)
async def silences_page(request: Request, web: WebDep, session: SessionDep) -> HTMLResponse:
    now = utcnow()
    return render(
        request,
        "silences.html",
        web,
        nav="alerts",
        silences=await views.current_silences(session, now=now),
        windows=await views.current_windows(session, now=now),
        may_change=may(web, ADMIN),
    )
