"""What every dashboard route shares: the session dependency, rendering, headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from unity.auth.access import READ, Principal, Requirement, declare
from unity.auth.sessions import WebSession
from unity.web.session import request_session
from unity.web.templating import templates

__all__ = [
    "ForbiddenPageError",
    "LoginRequiredError",
    "WebDep",
    "login_redirect",
    "may",
    "principal_of",
    "render",
    "secure_headers",
    "session_guard",
]

# Scripts and styles come only from the hub; nothing may frame the dashboard.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class LoginRequiredError(Exception):
    """No live session: pages redirect to the login page, fragments answer 401."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class ForbiddenPageError(Exception):
    """A live session whose scope the page's requirement refuses: 403."""

    def __init__(self, web: WebSession, message: str) -> None:
        super().__init__(message)
        self.web = web
        self.message = message


def session_guard(requirement: Requirement) -> Callable[[Request], Awaitable[WebSession]]:
    """The dependency of a page that needs ``requirement``: no session sends the
    browser to the login page, a session of too small a scope gets 403."""

    async def check(request: Request) -> WebSession:
        web = await request_session(request)
        if web is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequiredError(target)
        refusal = requirement.refusal(principal_of(web))
        if refusal is not None:
            raise ForbiddenPageError(web, refusal)
        return web

    return declare(check, requirement)


# A page's session parameter carries its requirement; every page so far needs a
# read session and shows admin-only parts through ``may``.
WebDep = Annotated[WebSession, Depends(session_guard(READ))]


def principal_of(web: WebSession) -> Principal:
    """The API principal a session acts as: the token the operator logged in with."""
    return Principal("token", web.token_id, scope=web.scope)


def may(web: WebSession, requirement: Requirement) -> bool:
    """Whether the session meets ``requirement``: a page shows a part only to a
    session whose token the API operation giving that data would accept (the
    page names the operation's requirement; ``tests/web/test_authz.py`` checks
    that the two agree)."""
    return requirement.permits(principal_of(web))


def secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(
    request: Request,
    template: str,
    web: WebSession | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    engine = getattr(request.app.state, "alerts", None)
    firing = engine.firing_count() if engine is not None and web is not None else 0
    response = templates().TemplateResponse(
        request,
        template,
        {"web": web, "status_code": status_code, "alerts_firing": firing, **context},
        status_code=status_code,
    )
    secure_headers(response)
    return response


def login_redirect(next_path: str) -> RedirectResponse:
    target = "/login" if next_path in ("", "/") else f"/login?next={quote(next_path, safe='/')}"
    return RedirectResponse(target, status_code=303)
