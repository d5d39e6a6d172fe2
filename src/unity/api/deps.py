"""Dependencies shared by the routes: the manager, sessions and auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from unity.api.errors import ApiError
from unity.auth.tokens import Scope, verify_token
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import ApiToken

__all__ = [
    "AdminToken",
    "DatabaseDep",
    "ManagerDep",
    "ReadToken",
    "SessionDep",
    "SettingsDep",
]

_bearer = HTTPBearer(auto_error=False, description="A hub token: `unity_<id>_<secret>`.")


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


def _require(scope: Scope) -> object:
    async def check(
        db: DatabaseDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiToken:
        if credentials is None:
            raise ApiError(
                401,
                "authentication required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        async with db.session() as session:
            token = await verify_token(session, credentials.credentials)
        if token is None:
            raise ApiError(
                401, "token is invalid, expired or revoked", headers={"WWW-Authenticate": "Bearer"}
            )
        if not Scope(token.scope).allows(scope):
            raise ApiError(403, f"this token's scope is {token.scope!r}; {scope.value!r} needed")
        return token

    return check


ReadToken = Annotated[ApiToken, Depends(_require(Scope.READ))]
AdminToken = Annotated[ApiToken, Depends(_require(Scope.ADMIN))]
