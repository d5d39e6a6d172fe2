"""The notification channels page: channels, adding one, a test button, the delivery log.

It reads through the read model (:mod:`unity.views.channels`), as the API
does; adding, testing and deleting are calls to ``/api/alerts/channels`` made
by the page's script, and the admin-only parts show as the API's own
requirements allow (``may``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from unity.api.deps import SessionDep
from unity.auth.access import ADMIN
from unity.notify.store import channel_out
from unity.views import channels as views
from unity.web.common import WebDep, may, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
LOG_ROWS = 50


@router.get("/channels", response_class=HTMLResponse)
async def channels_page(request: Request, web: WebDep, session: SessionDep) -> HTMLResponse:
    if getattr(request.app.state, "notifier", None) is None:
        return render(
            request,
            "error.html",
            web,
            nav="channels",
            status_code=503,
            message="notifications are not running on this hub",
        )
    return render(
        request,
        "channels.html",
        web,
        nav="channels",
        channels=[channel_out(row) for row in await views.channels(session)],
        deliveries=await views.deliveries(session, limit=LOG_ROWS),
        can_change=may(web, ADMIN),
        severities=["info", "warning", "critical"],
    )
