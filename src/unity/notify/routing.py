"""Which channel gets a notice, and which notices share a message."""

from __future__ import annotations

from fnmatch import fnmatchcase

from unity.notify import AlertNotice
from unity.storage.models import NotificationChannel

__all__ = ["SEVERITY_ORDER", "group_key", "matches"]

SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


def _any(patterns: list[str], value: str | None) -> bool:
    return not patterns or (value is not None and any(fnmatchcase(value, p) for p in patterns))


def matches(channel: NotificationChannel, notice: AlertNotice) -> bool:
    """Whether ``channel`` is enabled and its routing accepts ``notice``."""
    if not channel.enabled:
        return False
    if SEVERITY_ORDER[notice.severity] < SEVERITY_ORDER.get(channel.min_severity, 0):
        return False
    labels = notice.labels
    if not _any(channel.plugins, labels.get("plugin")):
        return False
    if not _any(channel.hosts, labels.get("host")):
        return False
    return all(
        key in labels and fnmatchcase(labels[key], pattern)
        for key, pattern in channel.labels.items()
    )


def group_key(notice: AlertNotice) -> str:
    """Notices of one host share a message; without a host, those of one rule do."""
    host = notice.labels.get("host")
    return f"host:{host}"[:255] if host else f"rule:{notice.rule_id}"[:255]
