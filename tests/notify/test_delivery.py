"""Notices reach real receivers on loopback: webhook, ntfy, Gotify, email and an
Alertmanager; a channel that is down is retried and nothing is lost; a storm
becomes a few messages."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from tests.notify.conftest import PUBLIC_URL, Clock
from tests.notify.receivers import MailReceiver, alertmanager, http_receiver
from unity.notify import AlertNotice
from unity.notify.dispatcher import Dispatcher
from unity.storage.models import NotificationDelivery, NotificationOutbox


def disk_notice(
    clock: Clock, *, host: str = "nas", status: str = "firing", **extra: Any
) -> AlertNotice:
    values: dict[str, Any] = {
        "fingerprint": f"disk-used:{host}:/srv",
        "status": status,
        "severity": "critical",
        "rule_id": "disk-used",
        "rule_name": "Disk almost full",
        "summary": f"/srv on {host} is 93.5% full (threshold 90%)",
        "labels": {"plugin": "disk-monitor", "host": host, "item": "/srv"},
        "value": 93.5,
        "unit": "%",
        "threshold": 90.0,
        "started_at": clock.now - timedelta(minutes=7),
        "link": "/plugins/disk-monitor?host=" + host,
    }
    values.update(extra)
    return AlertNotice(**values)


async def add_channel(
    client: httpx.AsyncClient, name: str, url: str, **routing: Any
) -> dict[str, Any]:
    answer = await client.post("/api/alerts/channels", json={"name": name, "url": url, **routing})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def deliveries(dispatcher: Dispatcher) -> list[NotificationDelivery]:
    async with dispatcher.db.session() as session:
        rows = await session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id))
        return list(rows)


async def outbox_count(dispatcher: Dispatcher, state: str | None = None) -> int:
    stmt = select(func.count()).select_from(NotificationOutbox)
    if state is not None:
        stmt = stmt.where(NotificationOutbox.state == state)
    async with dispatcher.db.session() as session:
        return int(await session.scalar(stmt) or 0)


async def test_webhook_ntfy_gotify_and_email_receive_a_message_that_explains_itself(
    client: httpx.AsyncClient, dispatcher: Dispatcher, clock: Clock, smtp: MailReceiver
) -> None:
    with http_receiver() as web:
        port = web.port
        await add_channel(client, "hook", f"json://127.0.0.1:{port}/hook")
        await add_channel(client, "phone", f"ntfy://127.0.0.1:{port}/homelab-alerts")
        await add_channel(client, "gotify", f"gotify://127.0.0.1:{port}/AppTokenGotify1")
        await add_channel(
            client,
            "mail",
            f"mailto://127.0.0.1:{smtp.port}?from=hub@example.com&to=ops@example.com&mode=insecure",
        )
        started = time.monotonic()
        await dispatcher.submit(disk_notice(clock))
        assert time.monotonic() - started < 2, "submit only writes the outbox"
        assert await dispatcher.deliver_due() == 0, "nothing goes out before the group wait"
        assert web.requests == []
        clock.advance(31)
        assert await dispatcher.deliver_due() == 4

        paths = sorted(r.path for r in web.requests)
        assert len(paths) == 3, paths
        by_path = {r.path: r for r in web.requests}
        hook = by_path["/hook"].json()
        assert hook["title"] == "Critical: Disk almost full on nas"
        body = hook["message"]
        assert "/srv on nas is 93.5% full" in body
        assert "Value: 93.5% (threshold 90%)" in body
        assert "For: 7 min" in body
        assert f"Chart: {PUBLIC_URL}/plugins/disk-monitor?host=nas" in body
        assert "Where: plugin disk-monitor, host nas, item /srv" in body
        ntfy = by_path["/"].json()
        assert ntfy["topic"] == "homelab-alerts"
        assert "93.5%" in ntfy["message"]
        gotify = by_path["/message"]
        assert "AppTokenGotify1" in gotify.headers.get("X-Gotify-Key", "") + str(gotify.path)
        assert "93.5%" in gotify.json()["message"]

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == "Critical: Disk almost full on nas"
    assert "Value: 93.5% (threshold 90%)" in MailReceiver.text_of(mail)

    log = await deliveries(dispatcher)
    assert sorted((d.channel, d.state, d.notices) for d in log) == [
        ("gotify", "sent", 1),
        ("hook", "sent", 1),
        ("mail", "sent", 1),
        ("phone", "sent", 1),
    ]
    assert await outbox_count(dispatcher) == 0
    page = (await client.get("/metrics")).text
    assert 'unity_notifications_sent_total{kind="apprise"} 4.0' in page


async def test_routing_by_severity_plugin_and_host(
    client: httpx.AsyncClient, dispatcher: Dispatcher, clock: Clock
) -> None:
    with http_receiver() as web:
        url = f"json://127.0.0.1:{web.port}"
        await add_channel(client, "critical-only", f"{url}/critical", min_severity="critical")
        await add_channel(client, "nas-disks", f"{url}/nas", plugins=["disk-*"], hosts=["nas"])
        await add_channel(client, "off", f"{url}/off", enabled=False)
        await dispatcher.submit(disk_notice(clock, host="pi", severity="warning"))
        await dispatcher.submit(disk_notice(clock, host="nas", severity="warning"))
        clock.advance(31)
        await dispatcher.deliver_due()
        assert sorted(r.path for r in web.requests) == ["/nas"]


async def test_alertmanager_shows_the_alert_and_then_its_resolution(
    client: httpx.AsyncClient, dispatcher: Dispatcher, clock: Clock, tmp_path: Path
) -> None:
    with alertmanager(tmp_path) as am:
        port = am.url.rsplit(":", 1)[1]
        channel = await add_channel(client, "am", f"alertmanager://127.0.0.1:{port}")
        assert channel["kind"] == "alertmanager"
        assert channel["target"] == "alertmanager://…"
        # Alertmanager compares with its own clock: the test clock starts at real time.
        notice = disk_notice(clock)
        resolved_at = clock.now
        await dispatcher.submit(notice)
        clock.advance(31)
        assert await dispatcher.deliver_due() == 1
        alerts = am.alerts()
        assert len(alerts) == 1, alerts
        alert = alerts[0]
        assert alert["labels"]["alertname"] == "Disk almost full"
        assert alert["labels"]["host"] == "nas"
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["value"] == "93.5 %"
        assert alert["annotations"]["threshold"] == "90 %"
        assert alert["generatorURL"] == f"{PUBLIC_URL}/plugins/disk-monitor?host=nas"
        assert alert["status"]["state"] == "active"

        resolved = disk_notice(
            clock, status="resolved", started_at=notice.started_at, ended_at=resolved_at
        )
        await dispatcher.submit(resolved)
        clock.advance(31)
        assert await dispatcher.deliver_due() == 1
        assert am.alerts() == [], "resolved: Alertmanager lists only unresolved alerts"
    log = await deliveries(dispatcher)
    assert [(d.channel, d.state) for d in log] == [("am", "sent"), ("am", "sent")]
