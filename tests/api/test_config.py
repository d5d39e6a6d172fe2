"""``GET``/``PUT /api/plugins/v2/{id}/config``: schema, validation, apply, secrets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import (
    API,
    MASK,
    SECRET,
    VaultPlugin,
    error_locs,
    error_of,
    eventually,
    execution_rows,
    plugin_row,
    stored_config,
)
from tests.support import sample_plugins
from tests.support.sample_plugins import CounterPlugin


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [*sample_plugins.ALL, VaultPlugin]


async def every_read(client: httpx.AsyncClient, plugin_id: str) -> list[httpx.Response]:
    """One answer from every read route, for leak checks."""
    paths = [
        API,
        f"{API}/{plugin_id}",
        f"{API}/{plugin_id}/config",
        f"{API}/{plugin_id}/health",
        f"{API}/{plugin_id}/metrics",
        f"{API}/{plugin_id}/executions",
        "/metrics",
        "/openapi.json",
    ]
    return [await client.get(path) for path in paths]


# -- reading ------------------------------------------------------------------------


async def test_get_config_returns_the_stored_config_and_schema(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/counter/config")
    assert response.status_code == 200
    assert response.json() == {
        "plugin_id": "counter",
        "config": {},
        "interval": 60,
        "enabled": False,
        "config_schema": {"type": "object", "properties": {}},
    }
    body = (await client.get(f"{API}/configured/config")).json()
    assert body["config_schema"]["required"] == ["url"]
    assert body["config_schema"]["properties"]["mode"]["pattern"] == "^(fast|slow)$"


async def test_get_config_of_an_unknown_plugin_is_404(client: httpx.AsyncClient) -> None:
    error_of(await client.get(f"{API}/nope/config"), 404)
    error_of(await client.put(f"{API}/nope/config", json={}), 404)


# -- validation -----------------------------------------------------------------------


async def test_an_invalid_config_lists_every_field_and_saves_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    old = {"url": "http://nas.lan", "port": 8443}
    assert (await client.put(f"{API}/configured/config", json=old)).status_code == 200
    bad = {
        "url": 5,
        "port": 70000,
        "mode": "medium",
        "bogus": True,
        "interval": 0,
        "retention_days": 0,
    }
    response = await client.put(f"{API}/configured/config", json=bad)
    assert error_locs(response) == {
        ("url",),
        ("port",),
        ("mode",),
        ("bogus",),
        ("interval",),
        ("retention_days",),
    }
    assert "configured" in response.json()["error"]["message"]
    assert (await client.get(f"{API}/configured/config")).json()["config"] == old
    assert (await plugin_row(app, "configured")).config == old
    assert app.state.manager.plugins["configured"].instance.config.port == 8443


async def test_a_missing_required_field_is_reported(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{API}/configured/config", json={"port": 22})
    assert error_locs(response) == {("url",)}


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("interval", [0, 0.5, -5, 86401, "60", True, [60], {"s": 60}]),
        ("retention_days", [0, 3651, 1.5, "7", False]),
    ],
)
async def test_bad_hub_keys_are_422_and_not_applied(
    app: FastAPI,
    client: httpx.AsyncClient,
    counter: CounterPlugin,
    key: str,
    values: list[Any],
) -> None:
    for value in values:
        response = await client.put(f"{API}/counter/config", json={key: value, "note": "x"})
        assert error_locs(response) == {(key,)}, value
    assert (await plugin_row(app, "counter")).config == {}
    assert "config" not in counter.events
    assert (await client.get(f"{API}/counter")).json()["interval"] == 60


async def test_a_valid_config_is_stored_applied_and_announced(
    app: FastAPI, client: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    config = {"interval": 30, "retention_days": 7, "note": "rack 2"}
    response = await client.put(f"{API}/counter/config", json=config)
    assert response.status_code == 200
    assert response.json()["plugin_id"] == "counter"
    assert response.json()["config"] == config
    assert counter.events == ["config"]
    # The plugin sees its own keys; the hub keeps interval and retention to itself.
    assert counter.config == {"note": "rack 2"}
    assert (await plugin_row(app, "counter")).config == config
    assert (await client.get(f"{API}/counter/config")).json()["config"] == config
    detail = (await client.get(f"{API}/counter")).json()
    assert detail["interval"] == 30
    assert detail["config"] == config


async def test_put_replaces_the_whole_config(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.put(f"{API}/configured/config", json={"url": "http://a", "mode": "slow"})
    await client.put(f"{API}/configured/config", json={"url": "http://b"})
    assert (await plugin_row(app, "configured")).config == {"url": "http://b"}
    instance = app.state.manager.plugins["configured"].instance
    assert instance.config.mode == "fast"
    assert (await client.post(f"{API}/configured/execute")).json()["data"] == {
        "url": "http://b",
        "port": 8080,
    }


async def test_an_interval_change_reschedules_an_enabled_plugin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.post(f"{API}/counter/enable")).status_code == 200
    response = await client.put(f"{API}/counter/config", json={"interval": 1})
    assert response.status_code == 200
    assert "counter" in app.state.manager.scheduler

    async def ran_twice() -> bool:
        runs = [e for e in await execution_rows(app, "counter") if e.trigger == "schedule"]
        return len(runs) >= 2

    # At the old 60 s interval there would be at most one scheduled run in this window.
    await eventually(ran_twice, timeout=2.5, message="two runs at the new 1 s interval")


async def test_an_interval_change_does_not_schedule_a_disabled_plugin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.put(f"{API}/counter/config", json={"interval": 5})).status_code == 200
    assert "counter" not in app.state.manager.scheduler
    assert (await client.get(f"{API}/counter")).json()["interval"] == 5


async def test_json_schema_plugin_errors_and_defaults(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.put(
        f"{API}/json-schema/config", json={"count": 0, "hosts": "web1", "colour": "red"}
    )
    error = error_of(response, 422)
    locs = {tuple(entry["loc"]) for entry in error["details"]}
    assert {("count",), ("hosts",)} <= locs
    assert any("colour" in entry["msg"] for entry in error["details"])
    assert (await plugin_row(app, "json-schema")).config == {}
    wrong_item = await client.put(f"{API}/json-schema/config", json={"hosts": ["a", 2]})
    assert {("hosts", "1")} == {
        tuple(str(p) for p in e["loc"]) for e in error_of(wrong_item, 422)["details"]
    }
    ok = await client.put(f"{API}/json-schema/config", json={"hosts": ["a", "b"]})
    assert ok.status_code == 200
    result = (await client.post(f"{API}/json-schema/execute")).json()
    assert result["data"] == {"count": 3, "hosts": 2}


# -- bodies that are not a config -------------------------------------------------------


async def test_a_body_that_is_not_an_object_is_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    for body in ([1, 2], "interval=5", 5, None, True):
        response = await client.put(f"{API}/counter/config", json=body)
        assert error_of(response, 422)["code"] == "invalid", body
    for raw, content_type in [
        (b'{"interval": ', "application/json"),
        (b"interval=5", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
        (b"", "application/json"),
        (b"hello", "text/plain"),
    ]:
        response = await client.put(
            f"{API}/counter/config", content=raw, headers={"content-type": content_type}
        )
        assert error_of(response, 422)["code"] == "invalid", raw
    assert (await plugin_row(app, "counter")).config == {}


# -- secrets --------------------------------------------------------------------------


async def test_a_secret_never_comes_back(app: FastAPI, client: httpx.AsyncClient) -> None:
    put = await client.put(f"{API}/vault/config", json={"token": SECRET})
    assert put.status_code == 200
    assert put.json()["config"] == {"token": MASK}
    assert (await client.get(f"{API}/vault/config")).json()["config"] == {"token": MASK}
    assert (await client.get(f"{API}/vault")).json()["config"] == {"token": MASK}
    assert (await stored_config(app, "vault")) == {"token": SECRET}
    responses = [put, *await every_read(client, "vault")]
    responses.append(await client.post(f"{API}/vault/execute"))
    assert all(SECRET not in r.text for r in responses)
    instance = app.state.manager.plugins["vault"].instance
    assert instance.config["token"].get_secret_value() == SECRET


async def test_sending_the_mask_back_keeps_the_stored_secret(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.put(f"{API}/vault/config", json={"token": SECRET})
    shown = (await client.get(f"{API}/vault/config")).json()["config"]
    shown["address"] = "http://vault2.lan"
    response = await client.put(f"{API}/vault/config", json=shown)
    assert response.status_code == 200
    assert response.json()["config"] == {"token": MASK, "address": "http://vault2.lan"}
    assert (await stored_config(app, "vault")) == {
        "token": SECRET,
        "address": "http://vault2.lan",
    }
    instance = app.state.manager.plugins["vault"].instance
    assert instance.config["token"].get_secret_value() == SECRET
    # A new value replaces it.
    await client.put(f"{API}/vault/config", json={"token": "rotated"})
    assert (await stored_config(app, "vault")) == {"token": "rotated"}


async def test_a_rejected_config_does_not_echo_the_secret(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for body in (
        {"token": SECRET, "address": 5},
        {"token": SECRET, "interval": "soon"},
        {"token": [SECRET]},
    ):
        response = await client.put(f"{API}/vault/config", json=body)
        error_of(response, 422)
        assert SECRET not in response.text
    assert (await plugin_row(app, "vault")).config == {}


async def test_an_optional_secret_is_masked_everywhere(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    put = await client.put(
        f"{API}/configured/config", json={"url": "http://nas.lan", "password": SECRET}
    )
    assert put.status_code == 200
    assert (await stored_config(app, "configured"))["password"] == SECRET
    assert put.json()["config"]["password"] == MASK
    assert (await client.get(f"{API}/configured/config")).json()["config"]["password"] == MASK
    assert (await client.get(f"{API}/configured")).json()["config"]["password"] == MASK
    assert all(SECRET not in r.text for r in [put, *await every_read(client, "configured")])


async def test_sending_the_mask_back_keeps_an_optional_secret(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.put(f"{API}/configured/config", json={"url": "http://a", "password": SECRET})
    response = await client.put(
        f"{API}/configured/config", json={"url": "http://b", "password": MASK}
    )
    assert response.status_code == 200
    assert (await stored_config(app, "configured")) == {"url": "http://b", "password": SECRET}
