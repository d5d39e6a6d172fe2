"""A plugin the registry knows but whose code is gone (uninstalled, or now failing to load)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import (
    API,
    MASK,
    SECRET,
    VaultPlugin,
    client_for,
    error_of,
    issue_token,
    running_app,
)
from tests.support.sample_plugins import CounterPlugin
from unity.auth.tokens import Scope
from unity.settings import Settings


@pytest.fixture
async def hub_without_vault(settings: Settings) -> AsyncIterator[FastAPI]:
    """First a hub with the vault plugin stores its secret and a run; then one without it."""
    async with running_app(settings, [CounterPlugin, VaultPlugin]) as first:
        token = await issue_token(first, Scope.ADMIN)
        async with client_for(first, token.value) as c:
            put = await c.put(f"{API}/vault/config", json={"token": SECRET})
            assert put.status_code == 200
            assert (await c.post(f"{API}/vault/execute")).json()["status"] == "success"
    async with running_app(settings, [CounterPlugin]) as second:
        yield second


@pytest.fixture
async def admin(hub_without_vault: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    token = await issue_token(hub_without_vault, Scope.ADMIN)
    async with client_for(hub_without_vault, token.value) as c:
        yield c


async def test_it_is_still_listed_and_readable(admin: httpx.AsyncClient) -> None:
    items = {item["id"]: item for item in (await admin.get(API)).json()["items"]}
    assert items["vault"]["loaded"] is False
    assert items["vault"]["run_count"] == 1
    assert items["counter"]["loaded"] is True
    detail = await admin.get(f"{API}/vault")
    assert detail.status_code == 200
    assert detail.json()["metadata"]["id"] == "vault"
    history = (await admin.get(f"{API}/vault/executions")).json()["items"]
    assert [e["status"] for e in history] == ["success"]
    assert len((await admin.get(f"{API}/vault/metrics")).json()["items"]) == 1
    health = await admin.get(f"{API}/vault/health")
    assert health.json()["status"] == "unknown"


async def test_its_secrets_stay_masked(admin: httpx.AsyncClient) -> None:
    config = await admin.get(f"{API}/vault/config")
    detail = await admin.get(f"{API}/vault")
    assert config.status_code == detail.status_code == 200
    assert SECRET not in config.text
    assert SECRET not in detail.text
    assert config.json()["config"]["token"] == MASK


async def test_controlling_it_is_a_conflict_not_a_404(admin: httpx.AsyncClient) -> None:
    requests: list[tuple[str, str, Any]] = [
        ("POST", f"{API}/vault/execute", None),
        ("POST", f"{API}/vault/enable", None),
        ("PUT", f"{API}/vault/config", {"token": "x"}),
    ]
    for method, path, body in requests:
        response = await admin.request(method, path, json=body)
        assert error_of(response, 409)["code"] == "conflict", path


async def test_controlling_it_never_crashes(admin: httpx.AsyncClient) -> None:
    for action in ("execute", "enable", "disable"):
        response = await admin.post(f"{API}/vault/{action}")
        assert response.status_code in {404, 409}, action
        error_of(response, response.status_code)
