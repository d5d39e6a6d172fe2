"""Sending a message: through Apprise, or forwarded to a Prometheus Alertmanager.

A channel URL is either an Apprise URL (ntfy://, gotify://, discord://,
tgram://, mailto://, json://... -- Apprise judges it) or
``alertmanager://[user:pass@]host:port[/prefix]`` (``alertmanagers://`` for
HTTPS), which posts the notices to the Alertmanager's ``/api/v2/alerts``.

Apprise loads its plugins on first use and some of them send with blocking
I/O, so setting it up runs in a thread and sending uses ``async_notify``
(which runs blocking senders in Apprise's executor); every attempt is
bounded by a timeout. Errors leave here as :class:`DeliveryError` with the
URL's secret parts scrubbed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from unity.notify import AlertNotice
from unity.notify.errors import DeliveryError, InvalidChannelError
from unity.notify.message import Message, describe, link_of, number
from unity.notify.scrub import hidden, install_log_filter, masked, remember, scrub

# Apprise and httpx are imported when a channel is checked or sent to: a hub
# without notification channels never loads them.
if TYPE_CHECKING:
    import apprise

__all__ = ["Target", "deliver", "parse_target"]

install_log_filter()

ALERTMANAGER_SCHEMES = {"alertmanager": "http", "alertmanagers": "https"}
# Apprise's NotifyType values, by severity.
_NOTIFY_TYPE = {
    "critical": "failure",
    "warning": "warning",
    "info": "info",
    "resolved": "success",
}
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Target:
    kind: Literal["apprise", "alertmanager"]
    masked: str


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def parse_target(url: str) -> Target:
    """What ``url`` sends to; ``InvalidChannelError("url")`` when nothing can use it.

    Blocking the first time (Apprise loads its plugins): call it in a thread.
    """
    with hidden(url):
        scheme = _scheme(url)
        if not scheme:
            raise InvalidChannelError("url", "url must start with a scheme, e.g. ntfy://")
        if scheme in ALERTMANAGER_SCHEMES:
            try:
                split = urlsplit(url)
                port = split.port
            except ValueError:
                raise InvalidChannelError("url", "url is not a valid alertmanager URL") from None
            if not split.hostname:
                raise InvalidChannelError(
                    "url", "alertmanager URL needs a host: alertmanager://host:9093"
                )
            del port
            return Target("alertmanager", masked(url))
        import apprise

        try:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        except Exception:
            plugin = None
        if plugin is None:
            raise InvalidChannelError(
                "url",
                f"url is not a notification URL Apprise can use (scheme {scheme!r} unknown, "
                "or the URL is incomplete); see https://github.com/caronc/apprise/wiki",
            )
        return Target("apprise", masked(url))


def _apprise(url: str) -> apprise.Apprise:
    import apprise

    client = apprise.Apprise()
    if not client.add(url):
        raise DeliveryError("the channel URL is no longer accepted by Apprise")
    return client


async def _send_apprise(url: str, message: Message, timeout: float) -> None:
    import apprise

    client = await asyncio.to_thread(_apprise, url)
    result = await client.async_notify(
        body=message.body,
        title=message.title,
        notify_type=apprise.NotifyType(_NOTIFY_TYPE.get(message.severity, "info")),
        body_format=apprise.NotifyFormat.TEXT,
        timeout=timeout,
    )
    if not result:
        lines = [entry.message for entry in result.logs() if entry.level not in ("DEBUG", "TRACE")]
        raise DeliveryError("; ".join(dict.fromkeys(lines)) or "Apprise reported a failure")


def _label_name(key: str) -> str:
    name = _LABEL_NAME.sub("_", key)
    return name if name and not name[0].isdigit() else f"_{name}"


def alertmanager_alert(notice: AlertNotice, *, now: datetime, public_url: str) -> dict[str, Any]:
    """One notice as an Alertmanager ``postableAlert`` (resolved: ``endsAt`` set)."""
    labels = {_label_name(k): v for k, v in notice.labels.items() if v}
    labels.update(alertname=notice.rule_name, severity=notice.severity, rule_id=notice.rule_id)
    annotations = {
        "summary": notice.summary,
        "description": "\n".join(describe(notice, now=now, public_url=public_url)),
    }
    if notice.value is not None:
        annotations["value"] = f"{number(notice.value)} {notice.unit}".strip()
    if notice.threshold is not None:
        annotations["threshold"] = f"{number(notice.threshold)} {notice.unit}".strip()
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": (notice.started_at or now).isoformat(),
    }
    if notice.status == "resolved":
        alert["endsAt"] = (notice.ended_at or now).isoformat()
    link = link_of(notice, public_url)
    if link.startswith(("http://", "https://")):
        alert["generatorURL"] = link
    return alert


async def _send_alertmanager(
    url: str, notices: list[AlertNotice], timeout: float, *, now: datetime, public_url: str
) -> None:
    split = urlsplit(url)
    base = f"{ALERTMANAGER_SCHEMES[split.scheme.lower()]}://{split.hostname}"
    if split.port:
        base += f":{split.port}"
    endpoint = base + split.path.rstrip("/") + "/api/v2/alerts"
    auth = (split.username or "", split.password or "") if split.username else None
    body = [alertmanager_alert(n, now=now, public_url=public_url) for n in notices]
    import httpx

    async with httpx.AsyncClient(timeout=timeout, auth=auth, trust_env=False) as client:
        try:
            answer = await client.post(endpoint, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Alertmanager unreachable: {type(exc).__name__}: {exc}") from None
    if answer.status_code >= 300:
        raise DeliveryError(f"Alertmanager answered {answer.status_code}: {answer.text[:300]}")


async def deliver(
    url: str,
    message: Message,
    notices: list[AlertNotice],
    *,
    timeout: float,
    now: datetime,
    public_url: str,
) -> None:
    """Send once; ``DeliveryError`` (scrubbed) when it did not go out within ``timeout``."""
    parts = remember(url)
    try:
        async with asyncio.timeout(timeout + 1):
            if _scheme(url) in ALERTMANAGER_SCHEMES:
                await _send_alertmanager(url, notices, timeout, now=now, public_url=public_url)
            else:
                await _send_apprise(url, message, timeout)
    except DeliveryError as exc:
        raise DeliveryError(scrub(str(exc), parts)[:2000]) from None
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g} s") from None
    except Exception as exc:
        raise DeliveryError(scrub(f"{type(exc).__name__}: {exc}", parts)[:2000]) from None
