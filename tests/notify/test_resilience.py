"""A channel that is down, a storm of alerts, and two hubs on one database."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.notify.conftest import Clock
from tests.notify.receivers import http_receiver
from tests.notify.test_delivery import add_channel, deliveries, disk_notice, outbox_count
from tests.support.processes import free_port
from unity.notify.dispatcher import Dispatcher
from unity.settings import Settings


async def test_a_channel_that_is_down_is_retried_with_backoff_and_nothing_is_lost(
    client: httpx.AsyncClient, dispatcher: Dispatcher, clock: Clock
) -> None:
    port = free_port()
    await add_channel(client, "flaky", f"json://127.0.0.1:{port}/hook")
    await dispatcher.submit(disk_notice(clock))
    clock.advance(31)
    assert await dispatcher.deliver_due() == 1
    failed = await deliveries(dispatcher)
    assert [(d.state, d.attempt) for d in failed] == [("failed", 1)]
    assert failed[0].error, "the log says why"
    assert str(port) not in failed[0].error, "the URL stays out of the log"
    # The hub is unaffected while the channel is down.
    assert (await client.get("/healthz")).status_code == 200
    assert await outbox_count(dispatcher, "pending") == 1

    clock.advance(5)
    assert await dispatcher.deliver_due() == 0, "the first retry waits 10 s"
    clock.advance(6)
    assert await dispatcher.deliver_due() == 1
    assert [(d.state, d.attempt) for d in await deliveries(dispatcher)][-1] == ("failed", 2)
    clock.advance(15)
    assert await dispatcher.deliver_due() == 0, "the second retry waits 20 s"

    with http_receiver(port) as web:
        clock.advance(6)
        assert await dispatcher.deliver_due() == 1
        assert len(web.requests) == 1
        assert "93.5%" in web.requests[0].json()["message"]
    log = await deliveries(dispatcher)
    assert [(d.state, d.attempt) for d in log] == [("failed", 1), ("failed", 2), ("sent", 3)]
    assert await outbox_count(dispatcher) == 0
    page = (await client.get("/metrics")).text
    assert 'unity_notifications_failed_total{kind="apprise"} 2.0' in page
    assert 'unity_notifications_sent_total{kind="apprise"} 1.0' in page


async def test_a_channel_down_for_good_is_given_up_after_the_attempts_and_logged(
    client: httpx.AsyncClient, dispatcher: Dispatcher, clock: Clock
) -> None:
    await add_channel(client, "gone", f"json://127.0.0.1:{free_port()}/hook")
    await dispatcher.submit(disk_notice(clock))
    for _ in range(8):
        clock.advance(700)
        await dispatcher.deliver_due()
    log = await deliveries(dispatcher)
    assert [d.attempt for d in log] == [1, 2, 3, 4, 5]
    assert "gave up on 1 notice(s) after 5 attempts" in log[-1].error
    assert await outbox_count(dispatcher, "failed") == 1


async def test_500_alerts_in_a_minute_become_a_few_grouped_rate_limited_messages(
    client: httpx.AsyncClient, dispatcher: Dispatcher, clock: Clock
) -> None:
    with http_receiver() as web:
        await add_channel(client, "pager", f"json://127.0.0.1:{web.port}/hook", rate_limit=5)
        for index in range(500):
            host = f"host-{index % 100:03d}"
            notice = disk_notice(clock, host=host, fingerprint=f"disk:{host}:{index}")
            await dispatcher.submit(notice)
            if index % 50 == 49:
                clock.advance(6)  # 500 notices over one minute
                await dispatcher.deliver_due()
        for _ in range(10):
            clock.advance(31)
            await dispatcher.deliver_due()

        log = await deliveries(dispatcher)
        assert all(d.state == "sent" for d in log)
        assert sum(d.notices for d in log) == 500, "every notice went out"
        assert len(web.requests) == len(log) <= 15, len(log)
        # Never more than the rate limit in any 60 s window.
        times = [d.at for d in log]
        for start in times:
            assert sum(1 for t in times if start <= t < start + timedelta(seconds=60)) <= 5
        digest = max(web.requests, key=lambda r: len(r.body)).json()
        assert re.match(
            r"\d+ alerts for Disk almost full on \d+ hosts \(\d+ firing\)", digest["title"]
        ), digest["title"]
        assert "... and" in digest["message"], "a digest lists the first notices, counts the rest"
    assert await outbox_count(dispatcher) == 0


async def test_two_hubs_on_one_database_deliver_each_notice_once(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, clock: Clock
) -> None:
    await app.state.notifier.stop()
    credentials = app.state.manager.credentials
    hub_a = Dispatcher(credentials, settings, clock=clock, hub="hub-a")
    hub_b = Dispatcher(credentials, settings, clock=clock, hub="hub-b")
    with http_receiver() as web:
        await add_channel(client, "hook", f"json://127.0.0.1:{web.port}/hook", rate_limit=1000)
        for index in range(60):
            host = f"host-{index:02d}"
            await hub_a.submit(disk_notice(clock, host=host, fingerprint=f"f{index}"))
        clock.advance(31)
        for _ in range(3):
            await asyncio.gather(hub_a.deliver_due(), hub_b.deliver_due())
        hosts = [r.json()["title"].rsplit(" on ", 1)[1] for r in web.requests]
        assert sorted(hosts) == sorted(f"host-{i:02d}" for i in range(60)), "each once"
    log = await deliveries(hub_a)
    assert len(log) == 60
    assert {d.hub for d in log} <= {"hub-a", "hub-b"}
