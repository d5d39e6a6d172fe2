"""Dependencies shared by the routes: the manager, sessions and auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from unity.api.errors import ApiError
from unity.auth.external import verify_plugin_key
from unity.auth.tokens import Scope, verify_token
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.storage.db import Database
from unity.web.session import session_principal
from unity_sdk.wire import API_KEY_PREFIX

__all__ = [
    "AdminToken",
    "DatabaseDep",
    "ManagerDep",
    "PluginKey",
    "PluginKeyOrReadToken",
    "Principal",
    "PrincipalDep",
    "ReadToken",
    "SessionDep",
    "SettingsDep",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="A hub token (`unity_...`) or an external plugin's API key (`unityk_...`).",
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
SessionDep = Annotated[AsyncSession, Depends(_session)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a hub token (people, scripts) or an external plugin's key."""

    kind: Literal["token", "plugin"]
    id: str
    scope: Scope | None = None
    plugin_id: str | None = None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


async def _principal(
    request: Request,
    db: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        # The dashboard's scripts call the API with its session cookie (CSRF-checked).
        web = await session_principal(request)
        if web is not None:
            return Principal("token", web.token_id, scope=web.scope)
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    value = credentials.credentials
    async with db.session() as session:
        if value.startswith(API_KEY_PREFIX):
            key = await verify_plugin_key(session, value)
            if key is not None:
                return Principal("plugin", key.id, plugin_id=key.plugin_id)
        else:
            token = await verify_token(session, value)
            if token is not None:
                return Principal("token", token.id, scope=Scope(token.scope))
    raise _unauthorized("credential is invalid, expired or revoked")


PrincipalDep = Annotated[Principal, Depends(_principal)]


def _require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if principal.kind == "plugin":
            raise ApiError(403, "a plugin API key can only be used on its own plugin's endpoints")
        assert principal.scope is not None
        if not principal.scope.allows(scope):
            raise ApiError(
                403, f"this token's scope is {principal.scope.value!r}; {scope.value!r} needed"
            )
        return principal

    return check


async def _plugin_key(plugin_id: str, principal: PrincipalDep) -> Principal:
    if principal.kind != "plugin":
        raise ApiError(403, "only the plugin's own API key can report for it")
    if principal.plugin_id != plugin_id:
        raise ApiError(403, "this API key belongs to another plugin")
    return principal


async def _plugin_key_or_read(plugin_id: str, principal: PrincipalDep) -> Principal:
    if principal.kind == "plugin":
        return await _plugin_key(plugin_id, principal)
    return await _require(Scope.READ)(principal)


ReadToken = Annotated[Principal, Depends(_require(Scope.READ))]
AdminToken = Annotated[Principal, Depends(_require(Scope.ADMIN))]
PluginKey = Annotated[Principal, Depends(_plugin_key)]
PluginKeyOrReadToken = Annotated[Principal, Depends(_plugin_key_or_read)]
