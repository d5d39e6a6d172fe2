"""The servers page offers only credentials a server accepts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.web.conftest import login


@pytest.fixture
async def browser(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await login(client, admin_token)).status_code == 303
        yield client


def _login_choices(page: str) -> list[str]:
    select = re.search(r'<select id="srv-cred".*?</select>', page, re.S)
    assert select is not None
    return re.findall(r'<option value="([^"]+)"', select.group(0))


async def test_add_server_form_lists_login_kinds_server_logins_first(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    empty = (await browser.get("/servers")).text
    assert _login_choices(empty) == []
    assert "credential first" in empty
    for body in (
        {"kind": "api_token", "name": "a-token", "token": "t0k3n"},
        {"kind": "password", "name": "b-password", "password": "pw"},
        {
            "kind": "server_login",
            "name": "c-login",
            "host": "nas",
            "username": "u",
            "password": "p",
        },
    ):
        assert (await client.post("/api/credentials", json=body)).status_code == 201
    page = (await browser.get("/servers")).text
    assert _login_choices(page) == ["c-login", "b-password"], "an API token is never offered"
    assert "credential first" not in page
