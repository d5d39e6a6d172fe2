"""``/api/credentials``: the encrypted credentials store and its audit log.

Read tokens list and inspect credentials (names, kinds, fingerprints,
expiry -- never secret material); admins create, delete and reveal. The
only response that carries a secret is ``POST /{name}/reveal``, and every
reveal is audited with the caller and its address.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, TypeAdapter

from unity.api.body import body_schema, parse_body, read_json
from unity.api.deps import AdminToken, ManagerDep, Principal, ReadToken, SettingsDep
from unity.api.errors import ApiError
from unity.credentials import (
    AuthorizedKeysError,
    CredentialError,
    CredentialExistsError,
    CredentialInput,
    CredentialInUseError,
    CredentialNotFoundError,
    CredentialStore,
    DecryptionError,
    HostKeyMismatchError,
    InvalidCredentialError,
    MasterKeyError,
    SSHAuthError,
    SSHConnectError,
)
from unity.credentials.schemas import NAME_PATTERN
from unity.storage.models import Credential, CredentialAudit

__all__ = [
    "AuditEntryOut",
    "CredentialOut",
    "actor_of",
    "credential_errors",
    "router",
    "source_of",
]

router = APIRouter(prefix="/api/credentials", tags=["credentials"])

_STATUS: list[tuple[type[CredentialError], int]] = [
    (CredentialNotFoundError, 404),
    (CredentialExistsError, 409),
    (CredentialInUseError, 409),
    (HostKeyMismatchError, 409),
    (DecryptionError, 409),
    (InvalidCredentialError, 422),
    (SSHAuthError, 502),
    (SSHConnectError, 502),
    (AuthorizedKeysError, 502),
    (MasterKeyError, 503),
]


@contextmanager
def credential_errors() -> Iterator[None]:
    """Turn the credentials package's typed errors into JSON API errors."""
    try:
        yield
    except CredentialError as exc:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 502)
        details = None
        if isinstance(exc, HostKeyMismatchError):
            details = {"server": exc.server, "offered": exc.offered, "pinned": exc.pinned}
        raise ApiError(status, str(exc), details=details) from None


def actor_of(principal: Principal) -> str:
    return f"{principal.kind}:{principal.id}"


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def _store(manager: ManagerDep) -> CredentialStore:
    with credential_errors():
        return manager.credentials


StoreDep = Annotated[CredentialStore, Depends(_store)]


class CredentialOut(BaseModel):
    """A credential as listed: public facts only, never secret material."""

    id: str
    name: str
    kind: str
    public: dict[str, Any] = Field(
        description="Fingerprint, public key, user, certificate subject/issuer/expiry..."
    )
    expires_at: datetime | None
    key_id: str = Field(description="Id of the master key that sealed the secret")
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime | None


class CredentialList(BaseModel):
    items: list[CredentialOut]
    next_cursor: str | None = None


class RevealOut(BaseModel):
    name: str
    kind: str
    public: dict[str, Any]
    secret: dict[str, str] = Field(description="The secret values. Handle with care.")


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    credential: str | None
    target: str | None
    source: str | None
    success: bool
    detail: str


class AuditList(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: int | None = None


def credential_out(row: Credential) -> CredentialOut:
    return CredentialOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        public=row.public,
        expires_at=row.expires_at,
        key_id=row.key_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        rotated_at=row.rotated_at,
    )


def _audit_out(row: CredentialAudit) -> AuditEntryOut:
    return AuditEntryOut(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        credential=row.credential,
        target=row.target,
        source=row.source,
        success=row.success,
        detail=row.detail,
    )


def _check_limit(limit: int, settings: SettingsDep) -> None:
    if limit > settings.max_page_size:
        raise ApiError(422, f"limit must be at most {settings.max_page_size}")


_CREDENTIAL_INPUT: TypeAdapter[CredentialInput] = TypeAdapter(CredentialInput)


@router.post(
    "",
    response_model=CredentialOut,
    status_code=201,
    openapi_extra=body_schema(_CREDENTIAL_INPUT.json_schema()),
)
async def create_credential(
    caller: AdminToken,
    store: StoreDep,
    request: Request,
) -> CredentialOut:
    """Store a credential. ``kind`` is password, api_token, ssh_key (``generate: true``
    or an OpenSSH/PEM ``private_key``), tls_certificate (PEM certificate and key) or
    server_login (host, port, username and a password or private key)."""
    # Read after authentication: a stranger's body is never parsed.
    body = parse_body(_CREDENTIAL_INPUT, await read_json(request))
    with credential_errors():
        row = await store.create(body, actor=actor_of(caller), source=source_of(request))
    return credential_out(row)


@router.get("", response_model=CredentialList)
async def list_credentials(
    _: ReadToken,
    store: StoreDep,
    settings: SettingsDep,
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> CredentialList:
    """Names, kinds, fingerprints and expiry dates, by name; never secret values."""
    _check_limit(limit, settings)
    rows = await store.list_credentials(kind=kind, after=cursor, limit=limit + 1)
    next_cursor = rows[limit - 1].name if len(rows) > limit else None
    return CredentialList(items=[credential_out(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/expiring", response_model=CredentialList)
async def expiring_credentials(
    _: ReadToken,
    store: StoreDep,
    days: Annotated[float, Query(ge=0, le=36500)] = 30,
) -> CredentialList:
    """Credentials (certificates, tokens with an expiry) that expire within ``days``,
    including those already expired; soonest first."""
    return CredentialList(items=[credential_out(r) for r in await store.expiring(days=days)])


@router.get("/audit", response_model=AuditList)
async def audit_log(
    _: AdminToken,
    store: StoreDep,
    settings: SettingsDep,
    credential: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> AuditList:
    """Who or what used, revealed or changed which credential, when, from where;
    newest first."""
    _check_limit(limit, settings)
    rows = await store.audit_log(
        credential=credential, action=action, actor=actor, before=cursor, limit=limit + 1
    )
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return AuditList(items=[_audit_out(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.get("/{name}", response_model=CredentialOut)
async def get_credential(name: str, _: ReadToken, store: StoreDep) -> CredentialOut:
    """One credential's public facts."""
    with credential_errors():
        return credential_out(await store.get(name))


@router.delete("/{name}", status_code=204)
async def delete_credential(
    name: str, caller: AdminToken, store: StoreDep, request: Request
) -> Response:
    """Delete a credential; 409 while a server or plugin config still uses it."""
    with credential_errors():
        await store.delete(name, actor=actor_of(caller), source=source_of(request))
    return Response(status_code=204)


@router.post("/{name}/reveal", response_model=RevealOut)
async def reveal_credential(
    name: str, caller: AdminToken, store: StoreDep, request: Request
) -> RevealOut:
    """Show the secret values (admin only). Every reveal is audited."""
    with credential_errors():
        revealed = await store.reveal(name, actor=actor_of(caller), source=source_of(request))
    return RevealOut(
        name=revealed.name, kind=revealed.kind, public=revealed.public, secret=revealed.secret
    )
