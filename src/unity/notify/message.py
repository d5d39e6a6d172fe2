"""Turning notices into a message a person understands without opening the hub.

Each notice says what (its summary), where (plugin, host, item), the value
with its unit against the threshold, for how long, and links to the plugin
page's chart at that time -- absolute when ``UNITY_PUBLIC_URL`` is set.
Notices also travel through the outbox as JSON (:func:`to_json`, :func:`from_json`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from unity.notify import AlertNotice

__all__ = ["Message", "compose", "duration", "from_json", "link_of", "to_json"]

# A digest lists this many notices in full, then counts the rest.
DIGEST_LINES = 20
_WHERE = ("plugin", "host", "item")


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: str  # the highest severity among firing notices; "resolved" when all resolved
    notices: int


def to_json(notice: AlertNotice) -> dict[str, Any]:
    data = asdict(notice)
    for key in ("started_at", "ended_at"):
        value = data[key]
        data[key] = value.isoformat() if value is not None else None
    return data


def from_json(data: dict[str, Any]) -> AlertNotice:
    values = dict(data)
    for key in ("started_at", "ended_at"):
        if values.get(key):
            values[key] = datetime.fromisoformat(values[key])
    known = AlertNotice.__dataclass_fields__
    return AlertNotice(**{k: v for k, v in values.items() if k in known})


def number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e15 else f"{value:.3e}"


def with_unit(value: float, unit: str) -> str:
    if unit == "bool":
        return "yes" if value else "no"
    if not unit:
        return number(value)
    return f"{number(value)}{unit}" if unit in ("%", "°C", "°F") else f"{number(value)} {unit}"


def duration(span: timedelta) -> str:
    """``2 h 5 min``, ``45 s``: the largest two units."""
    seconds = max(0, int(span.total_seconds()))
    units = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size} {name}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def link_of(notice: AlertNotice, public_url: str) -> str:
    """The notice's chart link: its own, else the plugin page at the start time."""
    link = notice.link
    plugin = notice.labels.get("plugin")
    if not link and plugin:
        query = {"host": notice.labels.get("host", "")}
        if notice.started_at is not None:
            query["at"] = notice.started_at.isoformat()
        query = {k: v for k, v in query.items() if v}
        link = f"/plugins/{quote(plugin, safe='')}" + (f"?{urlencode(query)}" if query else "")
    if link.startswith("/") and public_url:
        return public_url.rstrip("/") + link
    return link


def _where(notice: AlertNotice) -> str:
    labels = notice.labels
    parts = [f"{key} {labels[key]}" for key in _WHERE if labels.get(key)]
    return ", ".join(parts)


def describe(notice: AlertNotice, *, now: datetime, public_url: str) -> list[str]:
    """The lines of one notice."""
    resolved = notice.status == "resolved"
    head = "RESOLVED" if resolved else notice.severity.upper()
    lines = [f"[{head}] {notice.rule_name}: {notice.summary}"]
    where = _where(notice)
    if where:
        lines.append(f"  Where: {where}")
    if notice.value is not None:
        value = f"  Value: {with_unit(notice.value, notice.unit)}"
        if notice.threshold is not None:
            value += f" (threshold {with_unit(notice.threshold, notice.unit)})"
        lines.append(value)
    if notice.started_at is not None:
        end = notice.ended_at if resolved and notice.ended_at is not None else now
        since = notice.started_at.strftime("%Y-%m-%d %H:%M UTC")
        verb = "Lasted" if resolved else "For"
        lines.append(f"  {verb}: {duration(end - notice.started_at)} (since {since})")
    link = link_of(notice, public_url)
    if link:
        lines.append(f"  Chart: {link}")
    return lines


def _title(notices: list[AlertNotice]) -> str:
    firing = [n for n in notices if n.status == "firing"]
    if len(notices) == 1:
        notice = notices[0]
        where = notice.labels.get("host") or notice.labels.get("plugin") or ""
        state = "Resolved" if notice.status == "resolved" else notice.severity.capitalize()
        return f"{state}: {notice.rule_name}" + (f" on {where}" if where else "")
    hosts = Counter(n.labels.get("host", "") for n in notices)
    rules = Counter(n.rule_name for n in notices)
    if len(hosts) == 1 and "" not in hosts:
        subject = f"on {next(iter(hosts))}"
    elif len(rules) == 1:
        subject = f"for {next(iter(rules))} on {len(hosts)} hosts"
    else:
        subject = f"on {len(hosts)} hosts"
    resolved = len(notices) - len(firing)
    counts = ", ".join(
        part
        for part in (
            f"{len(firing)} firing" if firing else "",
            f"{resolved} resolved" if resolved else "",
        )
        if part
    )
    return f"{len(notices)} alerts {subject} ({counts})"


def compose(notices: list[AlertNotice], *, now: datetime, public_url: str) -> Message:
    """One message for ``notices`` (one group, or a digest of several)."""
    order = {"critical": 0, "warning": 1, "info": 2}
    ordered = sorted(notices, key=lambda n: (n.status != "firing", order[n.severity]))
    lines: list[str] = []
    for notice in ordered[:DIGEST_LINES]:
        lines.extend(describe(notice, now=now, public_url=public_url))
    if len(ordered) > DIGEST_LINES:
        rest = ordered[DIGEST_LINES:]
        lines.append(f"... and {len(rest)} more: " + ", ".join(sorted({n.rule_name for n in rest})))
    firing = [n for n in ordered if n.status == "firing"]
    severity = firing[0].severity if firing else "resolved"
    return Message(_title(ordered), "\n".join(lines), severity, len(notices))
