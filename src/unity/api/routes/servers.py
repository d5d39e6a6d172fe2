"""``/api/servers``: the inventory of servers plugins can collect from over SSH.

Adding a server names a login credential; ``check`` connects and pins the
host key on first contact; a changed key is refused (409) until an admin
accepts it; SSH public keys from the store can be installed on and removed
from the server's ``authorized_keys``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from unity.api.body import body_schema, json_body
from unity.api.deps import AdminToken, ManagerDep, ReadToken, SettingsDep
from unity.api.errors import ApiError
from unity.api.routes.credentials import actor_of, credential_errors, source_of
from unity.credentials import Inventory, ServerInput, ServerUpdate
from unity.plugins.manager import PluginManager
from unity.storage.models import Server

__all__ = ["router"]

router = APIRouter(prefix="/api/servers", tags=["servers"])


class ServerOut(BaseModel):
    name: str
    host: str
    port: int
    username: str
    credential: str
    authorized_keys_file: str
    host_key_fingerprint: str | None = Field(description="The pinned host key")
    host_key_pinned_at: datetime | None
    pending_host_key_fingerprint: str | None = Field(
        description="A different key the server offered; refused until accepted"
    )
    pending_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ServerList(BaseModel):
    items: list[ServerOut]
    next_cursor: str | None = None


class CheckOut(BaseModel):
    server: str
    fingerprint: str
    algorithm: str
    first_contact: bool = Field(description="True when this check pinned the host key")


class AcceptHostKey(BaseModel):
    fingerprint: str | None = Field(
        default=None, description="Accept only if this is the pending key's fingerprint"
    )


class InstallKey(BaseModel):
    credential: str = Field(description="An ssh_key (or key-based server_login) credential")


class KeyChangeOut(BaseModel):
    server: str
    credential: str
    path: str
    changed: bool = Field(description="False when there was nothing to do")
    backup: str | None = Field(description="Copy of the file as it was before the change")


def server_out(row: Server) -> ServerOut:
    return ServerOut(
        name=row.name,
        host=row.host,
        port=row.port,
        username=row.username,
        credential=row.credential,
        authorized_keys_file=row.authorized_keys_file,
        host_key_fingerprint=row.host_key_fingerprint,
        host_key_pinned_at=row.host_key_pinned_at,
        pending_host_key_fingerprint=row.pending_host_key_fingerprint,
        pending_seen_at=row.pending_seen_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _inventory(manager: PluginManager) -> Inventory:
    with credential_errors():
        return Inventory(manager.credentials)


@router.post(
    "",
    response_model=ServerOut,
    status_code=201,
    openapi_extra=body_schema(ServerInput.model_json_schema()),
)
async def add_server(
    caller: AdminToken,
    body: Annotated[ServerInput, json_body(ServerInput)],
    manager: ManagerDep,
    request: Request,
) -> ServerOut:
    """Add a server. With a ``server_login`` credential, host, port and username
    default to the login's."""
    with credential_errors():
        row = await _inventory(manager).add(body, actor=actor_of(caller), source=source_of(request))
    return server_out(row)


@router.get("", response_model=ServerList)
async def list_servers(
    _: ReadToken,
    manager: ManagerDep,
    settings: SettingsDep,
    limit: int = 100,
    cursor: str | None = None,
) -> ServerList:
    """The inventory, by name."""
    if not 1 <= limit <= settings.max_page_size:
        raise ApiError(422, f"limit must be from 1 to {settings.max_page_size}")
    rows = await _inventory(manager).list_servers(after=cursor, limit=limit + 1)
    next_cursor = rows[limit - 1].name if len(rows) > limit else None
    return ServerList(items=[server_out(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/{name}", response_model=ServerOut)
async def get_server(name: str, _: ReadToken, manager: ManagerDep) -> ServerOut:
    with credential_errors():
        return server_out(await _inventory(manager).get(name))


@router.patch(
    "/{name}",
    response_model=ServerOut,
    openapi_extra=body_schema(ServerUpdate.model_json_schema()),
)
async def update_server(
    name: str,
    caller: AdminToken,
    body: Annotated[ServerUpdate, json_body(ServerUpdate)],
    manager: ManagerDep,
    request: Request,
) -> ServerOut:
    """Change fields; a new host or port drops the pinned host key (it is learned anew)."""
    with credential_errors():
        row = await _inventory(manager).update(
            name, body, actor=actor_of(caller), source=source_of(request)
        )
    return server_out(row)


@router.delete("/{name}", status_code=204)
async def delete_server(
    name: str, caller: AdminToken, manager: ManagerDep, request: Request
) -> Response:
    """Remove a server; 409 while a plugin's ``targets`` name it."""
    with credential_errors():
        await _inventory(manager).delete(name, actor=actor_of(caller), source=source_of(request))
    return Response(status_code=204)


@router.post("/{name}/check", response_model=CheckOut)
async def check_server(
    name: str, caller: AdminToken, manager: ManagerDep, request: Request
) -> CheckOut:
    """Connect and log in now. On first contact the host key is pinned and its
    fingerprint returned; a key other than the pinned one answers 409."""
    # asyncssh loads with the first SSH use, not with the hub.
    from unity.credentials.ssh import SSHRunner

    with credential_errors():
        inventory = _inventory(manager)
        await inventory.get(name)
        runner = SSHRunner(
            inventory,
            name,
            actor=actor_of(caller),
            source=source_of(request),
            connect_timeout=manager.settings.ssh_connect_timeout,
        )
        try:
            info = await runner.connect()
        finally:
            await runner.close()
    return CheckOut(
        server=name,
        fingerprint=info.fingerprint,
        algorithm=info.algorithm,
        first_contact=info.first_contact,
    )


@router.post(
    "/{name}/accept-host-key",
    response_model=ServerOut,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": AcceptHostKey.model_json_schema()}},
        }
    },
)
async def accept_host_key(
    name: str,
    caller: AdminToken,
    body: Annotated[AcceptHostKey | None, json_body(AcceptHostKey, optional=True)],
    manager: ManagerDep,
    request: Request,
) -> ServerOut:
    """Trust the server's new host key (the pending one). Give its ``fingerprint``
    to make sure the key you checked is the key that gets pinned."""
    with credential_errors():
        row = await _inventory(manager).accept_host_key(
            name,
            actor=actor_of(caller),
            fingerprint=body.fingerprint if body else None,
            source=source_of(request),
        )
    return server_out(row)


async def _change_key(
    name: str,
    credential: str,
    *,
    install: bool,
    caller: AdminToken,
    manager: PluginManager,
    request: Request,
) -> KeyChangeOut:
    from unity.credentials.authorized_keys import change_credential_key

    with credential_errors():
        change = await change_credential_key(
            _inventory(manager),
            server=name,
            credential=credential,
            install=install,
            actor=actor_of(caller),
            source=source_of(request),
            connect_timeout=manager.settings.ssh_connect_timeout,
        )
    return KeyChangeOut(
        server=name,
        credential=credential,
        path=change.path,
        changed=change.changed,
        backup=change.backup,
    )


@router.post(
    "/{name}/authorized-keys",
    response_model=KeyChangeOut,
    openapi_extra=body_schema(InstallKey.model_json_schema()),
)
async def install_authorized_key(
    name: str,
    caller: AdminToken,
    body: Annotated[InstallKey, json_body(InstallKey)],
    manager: ManagerDep,
    request: Request,
) -> KeyChangeOut:
    """Append a stored SSH public key to the server's authorized_keys (once; the
    file is backed up first and read back afterwards)."""
    return await _change_key(
        name, body.credential, install=True, caller=caller, manager=manager, request=request
    )


@router.delete("/{name}/authorized-keys/{credential}", response_model=KeyChangeOut)
async def remove_authorized_key(
    name: str, credential: str, caller: AdminToken, manager: ManagerDep, request: Request
) -> KeyChangeOut:
    """Delete exactly the lines carrying that key; every other line stays as it was."""
    return await _change_key(
        name, credential, install=False, caller=caller, manager=manager, request=request
    )
