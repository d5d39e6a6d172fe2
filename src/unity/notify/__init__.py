"""Notifications: what the alert engine hands over, and who sends it.

The alert engine (:mod:`unity.alerts`) produces an :class:`AlertNotice` for
every alert that starts firing, fires on (repeat) or resolves, and passes it
to a :class:`Notifier`. The notifier routes, groups, rate-limits, delivers
through the channels and keeps the delivery log: :class:`unity.notify.dispatcher.Dispatcher`
is the hub's notifier, :mod:`.store` keeps channels (their URLs sealed in the
credentials store), :mod:`.channels` sends through Apprise or to an
Alertmanager, :mod:`.outbox` is the queue hubs share, :mod:`.message` writes
the text. See ``docs/notifications.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

__all__ = ["AlertNotice", "Notifier", "Severity"]

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class AlertNotice:
    """One alert instance at one moment of its life, ready to be told."""

    fingerprint: str  # stable id of the alert instance: its rule and labels
    status: Literal["firing", "resolved"]
    severity: Severity
    rule_id: str
    rule_name: str
    summary: str  # what and where, with the value, unit and threshold filled in
    labels: dict[str, str] = field(default_factory=dict)  # plugin, host, item...
    value: float | None = None
    unit: str = ""
    threshold: float | None = None
    started_at: datetime | None = None  # when the condition became true
    ended_at: datetime | None = None  # when it resolved
    link: str = ""  # path of the plugin page's chart at that time


class Notifier(Protocol):
    """Accepts notices; delivery happens later, off the caller's path."""

    async def submit(self, notice: AlertNotice) -> None: ...
