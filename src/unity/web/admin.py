"""The external plugins, credentials and servers pages.

They read through the same stores the API uses; every change the page
offers is a call to the JSON API (``/api/enrollment-tokens``,
``/api/credentials``, ``/api/servers``...) made by the page's script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from unity.api.deps import ManagerDep, SessionDep
from unity.api.routes.credentials import credential_out
from unity.api.routes.servers import server_out
from unity.auth import external as external_auth
from unity.auth.access import ADMIN
from unity.credentials import CredentialError, CredentialKind, Inventory
from unity.credentials.audit import AuditAction
from unity.credentials.inventory import LOGIN_KINDS
from unity.storage.models import EnrollmentToken
from unity.storage.types import utcnow
from unity.views import external_plugins
from unity.web.common import WebDep, may, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
AUDIT_ROWS = 50
EXPIRY_WARNING = timedelta(days=30)
SERVER_ACTIONS = {
    AuditAction.SERVER_ADD,
    AuditAction.SERVER_UPDATE,
    AuditAction.SERVER_DELETE,
    AuditAction.HOST_KEY_PIN,
    AuditAction.HOST_KEY_MISMATCH,
    AuditAction.HOST_KEY_ACCEPT,
    AuditAction.INSTALL_KEY,
    AuditAction.REMOVE_KEY,
}


@dataclass(frozen=True)
class Enrollment:
    row: EnrollmentToken
    status: str


def _enrollment_status(row: EnrollmentToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if external_auth.expired(row, now):
        return "expired"
    if row.max_uses is not None and row.uses >= row.max_uses:
        return "used up"
    return "live"


@router.get("/external", response_class=HTMLResponse)
async def external_page(
    request: Request, web: WebDep, session: SessionDep, manager: ManagerDep
) -> HTMLResponse:
    agents = await external_plugins(session, manager)
    keys = (
        {a.id: await external_auth.list_plugin_keys(session, a.id) for a in agents}
        if may(web, ADMIN)
        else None
    )
    now = utcnow()
    enrollments = (
        [
            Enrollment(row, _enrollment_status(row, now))
            for row in reversed(await external_auth.list_enrollments(session))
        ]
        if may(web, ADMIN)
        else None
    )
    return render(
        request,
        "external.html",
        web,
        nav="external",
        agents=agents,
        keys_by_plugin=keys,
        enrollments=enrollments,
    )


async def _audit(web: WebDep, manager: ManagerDep, *, limit: int) -> list[Any] | None:
    """The newest audit entries, None when the API would refuse them to the session."""
    if not may(web, ADMIN):
        return None
    rows = await manager.credentials.audit_log(limit=limit)
    return list(rows)


@router.get("/credentials", response_class=HTMLResponse)
async def credentials_page(request: Request, web: WebDep, manager: ManagerDep) -> HTMLResponse:
    try:
        store = manager.credentials
        rows = await store.list_credentials(limit=1000)
        audit = await _audit(web, manager, limit=AUDIT_ROWS)
    except CredentialError as exc:
        return render(
            request, "error.html", web, nav="credentials", status_code=503, message=str(exc)
        )
    soon = utcnow() + EXPIRY_WARNING
    return render(
        request,
        "credentials.html",
        web,
        nav="credentials",
        credentials=[credential_out(r) for r in rows],
        soon=soon,
        kinds=[k.value for k in CredentialKind],
        audit=audit,
    )


@router.get("/servers", response_class=HTMLResponse)
async def servers_page(request: Request, web: WebDep, manager: ManagerDep) -> HTMLResponse:
    try:
        store = manager.credentials
        servers = await Inventory(store).list_servers(limit=1000)
        credentials = await store.list_credentials(limit=1000)
        entries = await _audit(web, manager, limit=500)
    except CredentialError as exc:
        return render(request, "error.html", web, nav="servers", status_code=503, message=str(exc))
    # Only kinds a server accepts, server logins first (the form's default).
    logins = [c.name for kind in LOGIN_KINDS for c in credentials if c.kind == kind]
    ssh_keys = [
        c.name
        for c in credentials
        if c.kind == CredentialKind.SSH_KEY
        or (c.kind == CredentialKind.SERVER_LOGIN and c.public.get("fingerprint"))
    ]
    return render(
        request,
        "servers.html",
        web,
        nav="servers",
        servers=[server_out(s) for s in servers],
        logins=logins,
        ssh_keys=ssh_keys,
        audit=None
        if entries is None
        else [e for e in entries if e.action in SERVER_ACTIONS][:AUDIT_ROWS],
    )
