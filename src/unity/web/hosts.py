"""The host page (its plugins, "add a plugin", discovery's proposals) and the join command.

Changes the host page offers are calls to the JSON API (``/api/hosts/...``,
``/api/plugins/v2/{id}``) made by the page's script. The join page makes an
enrollment token itself (admin sessions only, CSRF-checked form) and shows the
one command that joins a new machine: ``unity-agent join URL TOKEN``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from unity.api.deps import ManagerDep, SessionDep, SettingsDep, check_same_origin
from unity.api.errors import ApiError
from unity.auth import external as external_auth
from unity.auth.access import ADMIN
from unity.auth.sessions import WebSession, csrf_matches
from unity.credentials import CredentialError
from unity.plugins.hosts import HostLookupError
from unity.settings import Settings
from unity.views.hosts import addable_plugins, host_detail
from unity.web.common import WebDep, render, session_guard

__all__ = ["join_command", "router"]

router = APIRouter(include_in_schema=False)
AdminWeb = Annotated[WebSession, Depends(session_guard(ADMIN))]


def join_command(hub_url: str, token: str) -> str:
    """The line a new machine runs to join this hub."""
    return f"unity-agent join {hub_url} {token}"


def _hub_url(request: Request, settings: Settings) -> str:
    """Where agents reach the hub: ``UNITY_PUBLIC_URL``, else the address this page came from."""
    return settings.public_url or str(request.base_url).rstrip("/")


async def _credentials(manager: ManagerDep) -> list[tuple[str, str]]:
    """Stored credentials (name, kind) for the accept form's picker; none without a keyring."""
    try:
        return [(c.name, c.kind) for c in await manager.credentials.list_credentials(limit=1000)]
    except CredentialError:
        return []


@router.get("/join", response_class=HTMLResponse)
async def join_page(request: Request, web: AdminWeb, settings: SettingsDep) -> HTMLResponse:
    return render(
        request, "join.html", web, nav="overview", command=None, hub_url=_hub_url(request, settings)
    )


@router.post("/join", response_class=HTMLResponse)
async def join(
    request: Request,
    web: AdminWeb,
    session: SessionDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form(max_length=128)] = "",
    uses: Annotated[int, Form(ge=1, le=1000)] = 1,
    hours: Annotated[float, Form(gt=0, le=24 * 365)] = 24,
) -> HTMLResponse:
    """Make an enrollment token and show the join command (once: only its hash is kept)."""
    check_same_origin(request)
    if not csrf_matches(web, csrf):
        raise ApiError(403, "missing or wrong CSRF token")
    row, token = await external_auth.create_enrollment(
        session, name="agent join", expires_in=timedelta(hours=hours), max_uses=uses
    )
    url = _hub_url(request, settings)
    return render(
        request,
        "join.html",
        web,
        nav="overview",
        command=join_command(url, token),
        hub_url=url,
        enrollment=row,
    )


@router.get("/hosts/{host_id}", response_class=HTMLResponse)
async def host_page(
    request: Request, host_id: str, web: WebDep, session: SessionDep, manager: ManagerDep
) -> HTMLResponse:
    try:
        detail = await host_detail(session, manager, host_id)
    except HostLookupError as exc:
        return render(request, "error.html", web, status_code=404, nav="overview", message=str(exc))
    return render(
        request,
        "host.html",
        web,
        nav="overview",
        detail=detail,
        host=detail.card,
        own=host_id == manager.settings.host_id,
        addable=addable_plugins(manager, detail.card),
        credentials=await _credentials(manager),
    )
