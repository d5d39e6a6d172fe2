"""Alert instances and their transitions: inactive -> pending -> firing -> resolved.

Each transition is one compare-and-set in the database: a new instance is an
INSERT of its fingerprint, a later one an UPDATE where the version is still
the one this hub read. When several hubs share a database and see the same
thing, exactly one wins each transition, stores it with its value, and
hands the notice to the notifier; the others re-read the instance and carry
on from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from unity.alerts.store import Suppressions
from unity.notify import AlertNotice, Notifier
from unity.storage.db import Database
from unity.storage.models import AlertInstance, AlertTransition

__all__ = ["Instance", "Lifecycle", "load_active"]

log = logging.getLogger(__name__)

# Columns copied between a row and an Instance.
_COLUMNS = (
    "plugin_id", "rule_id", "host", "item", "severity", "state", "value", "threshold", "unit",
    "summary", "since", "last_eval_at", "fired_at", "resolved_at", "notified_at", "version",
)  # fmt: skip
# Acknowledgement is set through the API (bumping the version), cleared on resolution.
_READ = (*_COLUMNS, "ack_by", "ack_at")


@dataclass
class Instance:
    """What this hub knows of one alert instance (``version`` 0: no row yet)."""

    fingerprint: str
    plugin_id: str
    rule_id: str
    host: str = ""
    item: str = ""
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    rule_name: str = ""
    state: str = "inactive"
    version: int = 0
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    summary: str = ""
    since: datetime | None = None
    last_eval_at: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    notified_at: datetime | None = None
    ack_by: str | None = None
    ack_at: datetime | None = None
    previous: tuple[datetime, float] | None = None  # rate rules: the last sample
    dirty: bool = False  # value or last_eval_at changed since last written

    @property
    def active(self) -> bool:
        return self.state in ("pending", "firing")

    def notice_labels(self) -> dict[str, str]:
        """The labels silences match and notices carry: plugin, rule, host, item, own."""
        labels = {"plugin": self.plugin_id, "rule": self.rule_id, **self.labels}
        if self.host:
            labels["host"] = self.host
        if self.item:
            labels["item"] = self.item
        return labels

    def load(self, row: AlertInstance) -> None:
        for name in _READ:
            setattr(self, name, getattr(row, name))
        self.labels = {str(k): str(v) for k, v in (row.labels or {}).items()}
        self.dirty = False


class Lifecycle:
    """Makes transitions (compare-and-set) and tells the notifier about them."""

    def __init__(
        self,
        db: Database,
        notifier: Notifier | None,
        *,
        link: Callable[[Instance, datetime], str],
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.link = link
        self.notices_suppressed = 0

    async def reload(self, inst: Instance) -> None:
        async with self.db.session() as session:
            row = await session.get(AlertInstance, inst.fingerprint)
            if row is None:
                inst.state, inst.version = "inactive", 0
            else:
                inst.load(row)

    def _row_values(self, inst: Instance) -> dict[str, Any]:
        values = {name: getattr(inst, name) for name in _COLUMNS}
        values["labels"] = inst.labels
        if not inst.active:
            values |= {"ack_by": None, "ack_at": None, "ack_note": None}
        return values

    async def move(
        self,
        inst: Instance,
        to_state: str,
        *,
        now: datetime,
        value: float | None,
        suppressions: Suppressions,
    ) -> bool:
        """Make the transition of ``inst`` to ``to_state``; False when another hub
        changed the instance first (``inst`` is then re-read)."""
        before = (inst.state, inst.version)
        previous = {name: getattr(inst, name) for name in _READ}
        from_state = inst.state
        inst.state, inst.value, inst.last_eval_at = to_state, value, now
        if to_state == "pending" or (to_state == "firing" and from_state not in ("pending",)):
            inst.since = now
        # A notice held back by a silence is told once the silence is over (tick).
        told = not suppressions.silenced(inst.notice_labels())
        if not told and to_state in ("firing", "resolved"):
            self.notices_suppressed += 1
        if to_state == "firing":
            inst.fired_at, inst.resolved_at = now, None
            inst.notified_at = now if told else None
        if to_state == "resolved":
            inst.resolved_at = now
        if to_state in ("resolved", "inactive"):
            inst.ack_by = inst.ack_at = None
        if inst.since is None:
            inst.since = now
        won = await self._write(inst, before, from_state, now)
        if not won:
            for name, old in previous.items():
                setattr(inst, name, old)
            await self.reload(inst)
            return False
        inst.dirty = False
        if told and to_state in ("firing", "resolved"):
            await self._tell(inst, "firing" if to_state == "firing" else "resolved", now)
        return True

    async def _write(
        self, inst: Instance, before: tuple[str, int], from_state: str, now: datetime
    ) -> bool:
        _, version = before
        values = self._row_values(inst)
        try:
            async with self.db.writer() as session:
                if version == 0:
                    values["version"] = 1
                    session.add(AlertInstance(fingerprint=inst.fingerprint, **values))
                    await session.flush()
                else:
                    values["version"] = version + 1
                    result = await session.execute(
                        update(AlertInstance)
                        .where(
                            AlertInstance.fingerprint == inst.fingerprint,
                            AlertInstance.version == version,
                        )
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(result, "rowcount", 0) != 1:
                        raise _Lost
                session.add(
                    AlertTransition(
                        fingerprint=inst.fingerprint,
                        plugin_id=inst.plugin_id,
                        rule_id=inst.rule_id,
                        host=inst.host,
                        item=inst.item,
                        severity=inst.severity,
                        from_state=from_state,
                        to_state=inst.state,
                        value=inst.value,
                        summary=inst.summary,
                        at=now,
                    )
                )
        except (_Lost, IntegrityError):
            return False
        inst.version = values["version"]
        return True

    async def repeat(self, inst: Instance, *, now: datetime) -> bool:
        """Tell a firing alert again (one hub wins the repeat)."""
        async with self.db.writer() as session:
            result = await session.execute(
                update(AlertInstance)
                .where(
                    AlertInstance.fingerprint == inst.fingerprint,
                    AlertInstance.version == inst.version,
                )
                .values(notified_at=now, version=inst.version + 1)
                .execution_options(synchronize_session=False)
            )
        if getattr(result, "rowcount", 0) != 1:
            await self.reload(inst)
            return False
        inst.version += 1
        inst.notified_at = now
        await self._tell(inst, "firing", now)
        return True

    async def flush(self, instances: list[Instance]) -> None:
        """Write the latest value and evaluation time of active instances (no version bump)."""
        dirty = [i for i in instances if i.dirty and i.version > 0]
        if not dirty:
            return
        async with self.db.writer() as session:
            for inst in dirty:
                await session.execute(
                    update(AlertInstance)
                    .where(AlertInstance.fingerprint == inst.fingerprint)
                    .values(value=inst.value, last_eval_at=inst.last_eval_at, summary=inst.summary)
                    .execution_options(synchronize_session=False)
                )
                inst.dirty = False

    async def _tell(
        self, inst: Instance, status: Literal["firing", "resolved"], now: datetime
    ) -> None:
        labels = inst.notice_labels()
        if self.notifier is None:
            log.info("alert %s %s: %s", status, inst.fingerprint, inst.summary)
            return
        notice = AlertNotice(
            fingerprint=inst.fingerprint,
            status=status,
            severity=inst.severity,  # type: ignore[arg-type]
            rule_id=inst.rule_id,
            rule_name=inst.rule_name or inst.rule_id,
            summary=inst.summary,
            labels=labels,
            value=inst.value,
            unit=inst.unit,
            threshold=inst.threshold,
            started_at=inst.since,
            ended_at=inst.resolved_at if status == "resolved" else None,
            link=self.link(inst, now),
        )
        try:
            await self.notifier.submit(notice)
        except Exception:
            log.exception("the notifier refused the notice of alert %s", inst.fingerprint)


class _Lost(Exception):
    """Another hub changed the instance first."""


async def load_active(db: Database) -> list[AlertInstance]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(AlertInstance).where(AlertInstance.state.in_(("pending", "firing")))
            )
        )
