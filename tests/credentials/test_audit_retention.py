"""Old audit entries are purged: routine hub uses early, everything else after a year."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import select

from unity.credentials.audit import AuditAction
from unity.storage.models import CredentialAudit
from unity.storage.types import utcnow


async def test_routine_uses_go_with_metrics_and_the_rest_after_a_year(app: FastAPI) -> None:
    now = utcnow()
    entries = [
        ("hub", AuditAction.USE, True, 40),  # routine and past metric retention: gone
        ("hub", AuditAction.USE, True, 5),  # routine, recent: kept
        ("hub", AuditAction.USE, False, 40),  # a failed use is not routine: kept
        ("token:abc", AuditAction.REVEAL, True, 40),  # a reveal: kept
        ("plugin:nas", AuditAction.USE, True, 40),  # an external plugin's read: kept
        ("token:abc", AuditAction.REVEAL, True, 400),  # past the audit retention: gone
    ]
    async with app.state.db.session() as session:
        for number, (actor, action, success, age) in enumerate(entries):
            session.add(
                CredentialAudit(
                    at=now - timedelta(days=age),
                    actor=actor,
                    action=action.value,
                    credential="nas",
                    success=success,
                    detail=f"entry {number}",
                )
            )
    await app.state.retention.purge(now)
    async with app.state.db.session() as session:
        kept = sorted((await session.scalars(select(CredentialAudit.detail))).all())
    assert kept == ["entry 1", "entry 2", "entry 3", "entry 4"]
