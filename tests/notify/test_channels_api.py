"""The channels API: validation, scopes, masking, the credential behind a channel,
and canary tokens that never leave the credentials store."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.api.helpers import error_locs, error_of
from tests.notify.conftest import Clock
from tests.notify.receivers import http_receiver
from tests.notify.test_delivery import add_channel, disk_notice
from tests.support.processes import free_port
from unity.notify.dispatcher import Dispatcher
from unity.storage.models import (
    Credential,
    CredentialAudit,
    NotificationChannel,
    NotificationDelivery,
)

CANARY = "CanaryTok3n-5f1d9a7c"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("nosuchscheme://whatever/token", "scheme 'nosuchscheme' unknown"),
        ("not a url", "must start with a scheme"),
        ("alertmanager://:notaport", "alertmanager URL"),
    ],
)
async def test_a_url_apprise_cannot_use_is_refused_naming_the_field(
    client: httpx.AsyncClient, url: str, why: str
) -> None:
    answer = await client.post("/api/alerts/channels", json={"name": "bad", "url": url})
    assert error_locs(answer) == {("url",)}
    assert why in error_of(answer, 422)["message"]
    assert url not in answer.text
    assert (await client.get("/api/alerts/channels")).json()["items"] == []
    assert (await client.get("/api/credentials")).json()["items"] == [], "nothing half-written"


async def test_bad_routing_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    body = {"name": "x", "url": "json://127.0.0.1:9/x", "min_severity": "loud", "rate_limit": 0}
    answer = await client.post("/api/alerts/channels", json=body)
    assert error_locs(answer) == {("min_severity",), ("rate_limit",)}
    answer = await client.post("/api/alerts/channels", json={"name": "no spaces", "url": "x://y"})
    assert ("name",) in error_locs(answer)


async def test_channels_crud_with_scopes_and_the_credential_behind_it(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    url = f"ntfy://127.0.0.1:{free_port()}/{CANARY}"
    created = await add_channel(client, "phone", url, min_severity="warning", hosts=["nas"])
    assert created["target"] == "ntfy://…"
    assert created["credential"].startswith("channel.phone.")
    assert error_of(
        await client.post("/api/alerts/channels", json={"name": "phone", "url": url}), 409
    )

    listed = await reader.get("/api/alerts/channels")
    assert [c["name"] for c in listed.json()["items"]] == ["phone"]
    assert (await reader.get("/api/alerts/channels/phone")).json()["hosts"] == ["nas"]
    refused = await reader.post("/api/alerts/channels", json={"name": "x", "url": url})
    assert error_of(refused, 403)
    assert error_of(await reader.post("/api/alerts/channels/phone/test"), 403)
    assert error_of(await reader.delete("/api/alerts/channels/phone"), 403)
    assert error_of(await client.get("/api/alerts/channels/nope"), 404)

    # The credential holding the URL cannot be deleted from under the channel.
    held = await client.delete(f"/api/credentials/{created['credential']}")
    assert "channel:phone" in error_of(held, 409)["message"]

    changed = await client.patch(
        "/api/alerts/channels/phone", json={"url": "json://127.0.0.1:9/x", "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["target"] == "json://…"
    assert changed.json()["enabled"] is False
    assert changed.json()["hosts"] == ["nas"], "fields not given are kept"
    assert changed.json()["credential"] != created["credential"]
    names = [c["name"] for c in (await client.get("/api/credentials")).json()["items"]]
    assert names == [changed.json()["credential"]], "the old URL's credential is gone"

    assert (await client.delete("/api/alerts/channels/phone")).status_code == 204
    assert (await client.get("/api/credentials")).json()["items"] == []
    async with app.state.db.session() as session:
        actions = list(await session.scalars(select(CredentialAudit.action)))
    assert actions.count("create") == 2
    assert actions.count("delete") == 2


async def test_send_test_delivers_or_answers_502_and_both_are_logged(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, dispatcher: Dispatcher
) -> None:
    with http_receiver() as web:
        await add_channel(client, "hook", f"json://127.0.0.1:{web.port}/{CANARY}")
        sent = await client.post("/api/alerts/channels/hook/test")
        assert sent.status_code == 200, sent.text
        assert sent.json()["state"] == "sent"
        assert sent.json()["test"] is True
        assert web.requests[0].json()["title"] == "Info: Test notification on test-host"
    await add_channel(client, "down", f"json://127.0.0.1:{free_port()}/{CANARY}")
    failed = await client.post("/api/alerts/channels/down/test")
    error = error_of(failed, 502)
    assert "the test message to 'down' failed" in error["message"]
    log = (await reader.get("/api/alerts/deliveries")).json()["items"]
    assert [(d["channel"], d["state"], d["test"]) for d in log] == [
        ("down", "failed", True),
        ("hook", "sent", True),
    ]
    assert log[0]["error"]
    only = (await reader.get("/api/alerts/deliveries", params={"channel": "hook"})).json()
    assert [d["channel"] for d in only["items"]] == ["hook"]
    page = (await reader.get("/api/alerts/deliveries", params={"limit": 1})).json()
    assert len(page["items"]) == 1
    assert page["next_cursor"] is not None


async def test_canary_tokens_never_appear_in_answers_logs_or_the_database_in_clear(
    app: FastAPI,
    client: httpx.AsyncClient,
    dispatcher: Dispatcher,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    down = free_port()
    urls = {
        "tg": f"tgram://987654321:AAH{CANARY}/123456",
        "hook": f"json://user:{CANARY}@127.0.0.1:{down}/hook?token={CANARY}",
        "discord": f"discord://{CANARY}/{CANARY}x",
        "am": f"alertmanager://admin:{CANARY}@127.0.0.1:{down}",
    }
    answers = []
    for name, url in urls.items():
        # Channels that would leave loopback are stored switched off: never sent to.
        loopback = "127.0.0.1" in url
        body = {"name": name, "url": url, "enabled": loopback}
        answer = await client.post("/api/alerts/channels", json=body)
        assert answer.status_code == 201, answer.text
        answers.append(answer)
    answers.append(
        await client.post("/api/alerts/channels", json={"name": "x", "url": f"zz://{CANARY}"})
    )
    answers.append(await client.post("/api/alerts/channels/hook/test"))
    answers.append(await client.post("/api/alerts/channels/am/test"))
    await dispatcher.submit(disk_notice(clock))
    clock.advance(31)
    await dispatcher.deliver_due()
    for path in (
        "/api/alerts/channels",
        "/api/alerts/channels/hook",
        "/api/alerts/deliveries",
        "/api/credentials",
        "/api/credentials/audit",
        "/metrics",
    ):
        answers.append(await client.get(path))
    for answer in answers:
        assert CANARY not in answer.text, answer.request.url
    assert CANARY not in caplog.text
    assert "failed" in caplog.text, "the failures were logged (without the token)"
    async with app.state.db.session() as session:
        for model in (NotificationChannel, NotificationDelivery, CredentialAudit):
            for row in await session.scalars(select(model)):
                assert CANARY not in repr(vars(row)), model
        for credential in await session.scalars(select(Credential)):
            assert CANARY.encode() not in credential.ciphertext
