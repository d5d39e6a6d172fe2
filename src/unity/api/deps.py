"""Dependencies shared by the routes: the manager, database sessions and auth.

Authentication (:func:`_principal`) accepts a Bearer hub token, plugin key or
agent key, counted by the failed-authentication limiter, or the dashboard's
session cookie. Authorization is one dependency per route: ``ReadToken``,
``AdminToken``, ``PluginKey``, ``PluginKeyOrReadToken`` or ``AgentKeyDep``, each
enforcing a requirement of :mod:`unity.auth.access`. Every authenticated call
of an agent counts as a sign of life of its host (:func:`unity.plugins.agents.heartbeat`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from unity.api.clients import client_address, failure_limiter, too_many_failures
from unity.api.errors import ApiError
from unity.auth.access import (
    ADMIN,
    AGENT_KEY,
    OWN_PLUGIN_KEY,
    OWN_PLUGIN_KEY_OR_READ,
    READ,
    Principal,
    Requirement,
    declare,
)
from unity.auth.agents import authenticate_agent_key
from unity.auth.plugin_keys import authenticate_plugin_key
from unity.auth.ratelimit import TooManyFailuresError
from unity.auth.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    csrf_matches,
    resolve_session,
)
from unity.auth.tokens import Scope, verify_token
from unity.plugins.agents import heartbeat
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.storage.db import Database
from unity_sdk import AGENT_KEY_PREFIX, API_KEY_PREFIX

__all__ = [
    "AdminToken",
    "AgentKeyDep",
    "DatabaseDep",
    "ManagerDep",
    "PluginKey",
    "PluginKeyOrReadToken",
    "Principal",
    "PrincipalDep",
    "ReadToken",
    "SessionDep",
    "SettingsDep",
    "check_same_origin",
]

_bearer = HTTPBearer(
    auto_error=False,
    description=(
        "A hub token (`unity_...`), an external plugin's API key (`unityk_...`) "
        "or an agent's key (`unitya_...`)."
    ),
)


def _manager(request: Request) -> PluginManager:
    manager: PluginManager = request.app.state.manager
    return manager


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _session(db: Annotated[Database, Depends(_database)]) -> AsyncIterator[AsyncSession]:
    async with db.session() as session:
        yield session


ManagerDep = Annotated[PluginManager, Depends(_manager)]
SettingsDep = Annotated[Settings, Depends(_settings)]
DatabaseDep = Annotated[Database, Depends(_database)]
# "function": the session commits before the answer is sent, so a client never
# sees a write (a token, a config) that is not yet in the database.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request whose Origin (or Referer) is another site.

    Behind a reverse proxy that rewrites ``Host``, ``X-Forwarded-Host`` names the
    site the browser sees. Requests without either header (not from a browser
    page) pass: the CSRF token still guards them.
    """
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    if claimed == "null" or urlsplit(claimed).netloc not in hosts - {""}:
        raise ApiError(403, "cross-origin request refused")


async def _session_principal(request: Request, db: Database) -> Principal | None:
    """The dashboard session behind an API request without a Bearer header.

    Unsafe methods must come from the same origin and carry the session's CSRF
    token in ``X-CSRF-Token``, else 403.
    """
    value = request.cookies.get(SESSION_COOKIE)
    web = await resolve_session(db, value) if value else None
    if web is None:
        return None
    if request.method not in SAFE_METHODS:
        check_same_origin(request)
        if not csrf_matches(web, request.headers.get(CSRF_HEADER, "")):
            raise ApiError(403, f"missing or wrong {CSRF_HEADER} header for a dashboard session")
    return Principal("token", web.token_id, scope=web.scope)


async def _bearer_principal(db: Database, value: str) -> Principal | None:
    if value.startswith(API_KEY_PREFIX):
        # Remembered once verified: no database session on every batch.
        key = await authenticate_plugin_key(db, value)
        return None if key is None else Principal("plugin", key.id, plugin_id=key.plugin_id)
    if value.startswith(AGENT_KEY_PREFIX):
        agent = await authenticate_agent_key(db, value)
        return None if agent is None else Principal("agent", agent.id, host_id=agent.host_id)
    async with db.session() as session:
        token = await verify_token(session, value)
        return None if token is None else Principal("token", token.id, scope=Scope(token.scope))


async def _principal(
    request: Request,
    db: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        # The dashboard's scripts call the API with its session cookie (CSRF-checked).
        web = await _session_principal(request, db)
        if web is not None:
            return web
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    try:
        async with failure_limiter(request).attempt(client_address(request)) as attempt:
            principal = await _bearer_principal(db, credentials.credentials)
            if principal is None:
                attempt.failed()
    except TooManyFailuresError as exc:
        raise too_many_failures(exc) from None
    if principal is None:
        raise _unauthorized("credential is invalid, expired or revoked")
    if principal.host_id is not None:
        await heartbeat(db, principal.host_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _guard(requirement: Requirement) -> Callable[..., Awaitable[Principal]]:
    async def check(request: Request, principal: PrincipalDep) -> Principal:
        refusal = requirement.refusal(principal, request.path_params.get("plugin_id"))
        if refusal is not None:
            raise ApiError(403, refusal)
        return principal

    return declare(check, requirement)


ReadToken = Annotated[Principal, Depends(_guard(READ))]
AdminToken = Annotated[Principal, Depends(_guard(ADMIN))]
PluginKey = Annotated[Principal, Depends(_guard(OWN_PLUGIN_KEY))]
PluginKeyOrReadToken = Annotated[Principal, Depends(_guard(OWN_PLUGIN_KEY_OR_READ))]
AgentKeyDep = Annotated[Principal, Depends(_guard(AGENT_KEY))]
