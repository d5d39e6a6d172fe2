"""The audit log: every use, reveal and change of a credential, successful or not.

Entries name the actor (``token:<id>``, ``plugin:<id>``, ``hub``, ``cli``),
the credential, the target (a server, a plugin), the caller's address and a
detail line -- never a secret value.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from unity.storage.db import Database
from unity.storage.models import CredentialAudit
from unity.storage.types import utcnow

__all__ = ["AuditAction", "list_entries", "purge", "record", "record_detached"]


class AuditAction(StrEnum):
    CREATE = "create"
    USE = "use"
    REVEAL = "reveal"
    ROTATE = "rotate"
    DELETE = "delete"
    INSTALL_KEY = "install_key"
    REMOVE_KEY = "remove_key"
    HOST_KEY_PIN = "host_key_pin"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    HOST_KEY_ACCEPT = "host_key_accept"
    SERVER_ADD = "server_add"
    SERVER_UPDATE = "server_update"
    SERVER_DELETE = "server_delete"


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: AuditAction,
    credential: str | None,
    target: str | None = None,
    source: str | None = None,
    success: bool = True,
    detail: str = "",
) -> None:
    """Add an entry to ``session`` (stored when it commits)."""
    session.add(
        CredentialAudit(
            at=utcnow(),
            actor=actor[:128],
            action=action.value,
            credential=credential,
            target=target[:255] if target else None,
            source=source[:255] if source else None,
            success=success,
            detail=detail,
        )
    )


async def record_detached(
    db: Database,
    *,
    actor: str,
    action: AuditAction,
    credential: str | None,
    target: str | None = None,
    source: str | None = None,
    success: bool = True,
    detail: str = "",
) -> None:
    """Record in a transaction of its own: failures are audited even when the caller rolls back."""
    async with db.session() as session:
        record(
            session,
            actor=actor,
            action=action,
            credential=credential,
            target=target,
            source=source,
            success=success,
            detail=detail,
        )


async def list_entries(
    session: AsyncSession,
    *,
    credential: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[CredentialAudit]:
    """Newest first; ``before`` is the id of the last entry of the previous page."""
    stmt = select(CredentialAudit).order_by(CredentialAudit.id.desc()).limit(limit)
    if credential is not None:
        stmt = stmt.where(CredentialAudit.credential == credential)
    if action is not None:
        stmt = stmt.where(CredentialAudit.action == action)
    if actor is not None:
        stmt = stmt.where(CredentialAudit.actor == actor)
    if before is not None:
        stmt = stmt.where(CredentialAudit.id < before)
    return list((await session.scalars(stmt)).all())


async def purge(session: AsyncSession, *, routine_before: datetime, before: datetime) -> int:
    """Delete old entries; return how many.

    The hub's own successful ``use`` of a credential is written on every run of
    a plugin that references one, so those routine entries are kept as long as
    metrics (``routine_before``); everything else -- reveals, failures, changes,
    other actors -- is kept until ``before``.
    """
    routine = and_(
        CredentialAudit.actor == "hub",
        CredentialAudit.action == AuditAction.USE.value,
        CredentialAudit.success.is_(True),
        CredentialAudit.at < routine_before,
    )
    result = await session.execute(
        delete(CredentialAudit).where(or_(routine, CredentialAudit.at < before))
    )
    return int(getattr(result, "rowcount", 0) or 0)
