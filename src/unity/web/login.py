"""Logging in with a hub token, and out."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from unity.api.clients import client_address, failure_limiter, too_many_failures
from unity.api.deps import check_same_origin
from unity.api.errors import ApiError
from unity.auth.ratelimit import TooManyFailuresError
from unity.auth.sessions import SESSION_COOKIE, csrf_matches, end_session, start_session
from unity.storage.db import Database
from unity.web.common import render, secure_headers
from unity.web.session import (
    LOGIN_COOKIE,
    clear_cookie,
    login_nonce,
    request_session,
    set_cookie,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path on this hub: never another site (``//host``, ``https://``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _login_page(
    request: Request, next_path: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    nonce = login_nonce()
    response = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        nonce=nonce,
        next_path=next_path,
        error=error,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return response


def _refused(request: Request, next_path: str, exc: TooManyFailuresError) -> Response:
    """429 for a client over its failed-login limit: the login page for a browser,
    the API's JSON error for anything else."""
    if "text/html" not in request.headers.get("accept", ""):
        raise too_many_failures(exc)
    response = _login_page(
        request,
        next_path,
        error=f"Too many failed logins from your address. Try again in {exc.retry_after} s.",
        status_code=429,
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    if await request_session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, _safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=512)] = "",
    nonce: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Check the pasted hub token and start a session (the token itself is not kept)."""
    next_path = _safe_next(next)
    check_same_origin(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(nonce.encode(), expected.encode()):
        return _login_page(
            request,
            next_path,
            error="The login form expired. Paste the token again.",
            status_code=400,
        )
    db: Database = request.app.state.db
    try:
        async with failure_limiter(request).attempt(client_address(request)) as attempt:
            started = await start_session(db, token)
            if started is None:
                attempt.failed()
    except TooManyFailuresError as exc:
        return _refused(request, next_path, exc)
    if started is None:
        return _login_page(
            request,
            next_path,
            error="That token is not valid, has expired or was revoked.",
            status_code=401,
        )
    value, web = started
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, request, value, web)
    clear_cookie(response, request, LOGIN_COOKIE)
    return secure_headers(response)


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    """End the session: the session token is revoked, the cookie dropped."""
    check_same_origin(request)
    web = await request_session(request)
    if web is not None:
        if not csrf_matches(web, csrf):
            raise ApiError(403, "missing or wrong CSRF token")
        db: Database = request.app.state.db
        await end_session(db, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, request)
    return secure_headers(response)
