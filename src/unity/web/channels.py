"""The notification channels page: channels, adding one, a test button, the delivery log.

It reads through the same store the API uses; adding, testing and deleting
are calls to ``/api/alerts/channels`` made by the page's script, and the
admin-only parts are shown as the API's own requirements allow (``may``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from unity.api.deps import SessionDep
from unity.api.routes import channels as channels_api
from unity.notify.store import channel_out
from unity.storage.models import NotificationDelivery
from unity.web.common import WebDep, may, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
LOG_ROWS = 50


@router.get("/channels", response_class=HTMLResponse)
async def channels_page(request: Request, web: WebDep, session: SessionDep) -> HTMLResponse:
    notifier = getattr(request.app.state, "notifier", None)
    if notifier is None:
        return render(
            request,
            "error.html",
            web,
            nav="channels",
            status_code=503,
            message="notifications are not running on this hub",
        )
    rows = await notifier.channels.list_channels()
    log = (
        list(
            await session.scalars(
                select(NotificationDelivery)
                .order_by(NotificationDelivery.id.desc())
                .limit(LOG_ROWS)
            )
        )
        if may(web, channels_api.list_deliveries)
        else None
    )
    return render(
        request,
        "channels.html",
        web,
        nav="channels",
        channels=[channel_out(row) for row in rows],
        deliveries=[channels_api.delivery_out(row) for row in log] if log is not None else None,
        can_change=may(web, channels_api.create_channel),
        severities=["info", "warning", "critical"],
    )
