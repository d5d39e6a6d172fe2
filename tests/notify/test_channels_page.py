"""The channels page: channels with masked targets, the add form, test buttons for
admins only, and the delivery log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.notify.receivers import http_receiver
from tests.notify.test_channels_api import CANARY
from tests.notify.test_delivery import add_channel
from tests.web.conftest import login


async def _browser(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await login(client, token)).status_code == 303
        yield client


@pytest.fixture
async def admin_browser(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _browser(app, admin_token):
        yield client


@pytest.fixture
async def read_browser(app: FastAPI, read_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _browser(app, read_token):
        yield client


async def test_the_page_lists_channels_and_deliveries_without_urls(
    client: httpx.AsyncClient, admin_browser: httpx.AsyncClient, read_browser: httpx.AsyncClient
) -> None:
    empty = await admin_browser.get("/channels")
    assert empty.status_code == 200
    assert "No channel yet" in empty.text
    assert 'data-api-form="POST /api/alerts/channels"' in empty.text
    with http_receiver() as web:
        await add_channel(client, "hook", f"json://127.0.0.1:{web.port}/{CANARY}")
        assert (await client.post("/api/alerts/channels/hook/test")).status_code == 200
    page = (await admin_browser.get("/channels")).text
    assert 'data-channel="hook"' in page
    assert "<code>json://…</code>" in page
    assert 'data-api="POST /api/alerts/channels/hook/test"' in page
    assert "Info: Test notification on test-host" in page, "the delivery log shows the message"
    assert CANARY not in page
    assert 'aria-current="page">Channels' in page

    read_only = (await read_browser.get("/channels")).text
    assert 'data-channel="hook"' in read_only
    assert CANARY not in read_only
    # A read session sees the buttons locked: the API would refuse it.
    form = read_only.split('data-api-form="POST /api/alerts/channels"', 1)[1]
    assert form.split(">", 1)[1].lstrip().startswith('<fieldset class="stack" disabled')
