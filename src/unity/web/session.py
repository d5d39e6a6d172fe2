"""The dashboard's side of a session: the cookies it sets and reads.

What a session is (a hub-token row, its expiry, its CSRF token) lives in
:mod:`unity.auth.sessions`.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Response

from unity.auth.sessions import SESSION_COOKIE, WebSession, resolve_session
from unity.storage.db import Database
from unity.storage.types import utcnow

__all__ = [
    "LOGIN_COOKIE",
    "clear_cookie",
    "login_nonce",
    "request_session",
    "set_cookie",
]

LOGIN_COOKIE = "unity_login"


async def request_session(request: Request) -> WebSession | None:
    """The live session named by the request's cookie, if any (no CSRF check)."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    db: Database = request.app.state.db
    return await resolve_session(db, value)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, value: str, web: WebSession) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max(1, int((web.expires_at - utcnow()).total_seconds())),
        path="/",
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str = SESSION_COOKIE) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, secure=_secure(request), samesite="strict"
    )


def login_nonce() -> str:
    """A fresh value for the login form's double-submit cookie."""
    return secrets.token_urlsafe(24)
